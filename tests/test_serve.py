"""ppinfer serve, in process: create_app's routes through httpx's ASGI transport (a client
ppinfer did not write), on the built-in EfficientNet-Lite0 and real photos.

Answers are compared with ``ppinfer predict --json`` on the same files (equal class ids, scores
within 1e-6). The real server (uvicorn, tritonclient, curl, signals) is test_serve_process.py.
"""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from click.testing import CliRunner  # noqa: E402

import ppinfer  # noqa: E402
from ppinfer.cli import cli  # noqa: E402
from ppinfer.pipeline.sample import sample_image_path  # noqa: E402
from ppinfer.serving import create_app  # noqa: E402


@pytest.fixture(scope="module")
def predictor():
    with ppinfer.load(engine="analysis", batch_size=8) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def images(photos) -> dict[str, bytes]:
    """Four real files: three photos (two JPEGs, a PNG) and the shipped photo."""
    files = {name: path for name, path in photos.items()}
    files["shipped"] = sample_image_path()
    return {name: path.read_bytes() for name, path in files.items()}


@pytest.fixture(scope="module")
def expected(photos) -> dict[str, dict]:
    """``ppinfer predict --json`` on the same files, by name."""
    paths = {**{name: str(path) for name, path in photos.items()},
             "shipped": str(sample_image_path())}
    run = CliRunner().invoke(cli, ["predict", "--engine", "analysis", "--json",
                                   *paths.values()])
    assert run.exit_code == 0, run.output
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    by_path = {line["file_name"]: line for line in lines}
    return {name: by_path[path] for name, path in paths.items()}


def call(app, requests):
    """Run ``requests(client)`` (a coroutine function) against ``app``; its return value."""

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                     timeout=120) as client:
            return await requests(client)

    return asyncio.run(main())


def assert_same(ids, scores, want: dict) -> None:
    assert list(ids) == want["class_ids"]
    np.testing.assert_allclose(scores, want["scores"], rtol=0, atol=1e-6)


def test_every_route_answers_as_ppinfer_predict_does_for_the_same_file(predictor, images,
                                                                     expected):
    app = create_app(predictor)

    async def requests(client):
        answers = {}
        for name, data in images.items():
            raw = await client.post("/predict", content=data)
            upload = await client.post("/predict", files={"file": (f"{name}.img", data)})
            paddlex = await client.post("/image-classification",
                                        json={"image": base64.b64encode(data).decode()})
            v2 = await client.post("/v2/models/EfficientNet_lite0/infer", json={"inputs": [{
                "name": "image", "datatype": "BYTES", "shape": [1],
                "data": [base64.b64encode(data).decode()]}]})
            answers[name] = (raw, upload, paddlex, v2)
        return answers

    for name, (raw, upload, paddlex, v2) in call(app, requests).items():
        want = expected[name]
        assert raw.status_code == upload.status_code == paddlex.status_code == 200
        assert v2.status_code == 200
        assert {k: v for k, v in raw.json().items() if k != "file_name"} == \
            {k: v for k, v in want.items() if k != "file_name"}
        assert upload.json()["file_name"] == f"{name}.img"
        assert_same(upload.json()["class_ids"], upload.json()["scores"], want)
        categories = paddlex.json()["result"]["categories"]
        assert_same([c["id"] for c in categories], [c["score"] for c in categories], want)
        assert [c["name"] for c in categories] == want["label_names"]
        outputs = {o["name"]: o["data"] for o in v2.json()["outputs"]}
        assert_same(outputs["class_ids"], outputs["scores"], want)
        assert outputs["label_names"] == want["label_names"]


def test_32_concurrent_clients_get_their_own_results_from_shared_engine_calls(
        predictor, images, expected):
    app = create_app(predictor, max_batch=8, max_delay_ms=2000)
    names = [list(images)[i % len(images)] for i in range(32)]

    async def requests(client):
        answers = await asyncio.gather(*(client.post("/predict", content=images[name])
                                         for name in names))
        return answers, (await client.get("/metrics")).text

    answers, metrics = call(app, requests)
    for name, answer in zip(names, answers):
        assert answer.status_code == 200
        assert_same(answer.json()["class_ids"], answer.json()["scores"], expected[name])
    calls, images_run = batch_histogram(metrics)
    assert images_run == 32
    assert calls < 32, "no engine call ran more than one request's image"


def batch_histogram(text: str) -> tuple[float, float]:
    from prometheus_client.parser import text_string_to_metric_families

    samples = {s.name: s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name.startswith("ppinfer_batch_size")}
    return samples["ppinfer_batch_size_count"], samples["ppinfer_batch_size_sum"]


def test_paddlex_envelope_carries_topk_categories_and_the_log_id(predictor, images, expected):
    app = create_app(predictor)
    body = {"image": base64.b64encode(images["chelsea"]).decode(), "topk": 2, "logId": "abc"}
    answer = call(app, lambda client: client.post("/image-classification", json=body))
    assert answer.status_code == 200
    envelope = answer.json()
    assert (envelope["logId"], envelope["errorCode"], envelope["errorMsg"]) == \
        ("abc", 0, "Success")
    assert [c["id"] for c in envelope["result"]["categories"]] == \
        expected["chelsea"]["class_ids"][:2]


@pytest.mark.parametrize("body, status, says", [
    ({"image": "!!!not base64!!!"}, 400, "not base64"),
    ({"image": base64.b64encode(b"plain text").decode()}, 400, "not an image OpenCV can"),
    ({"topk": 3}, 422, "needs 'image'"),
    ({"image": "aGVsbG8=", "topk": 0}, 422, "topk"),
    ({"image": "http://127.0.0.1:1/cat.jpg"}, 400, "does not fetch URLs"),
], ids=["bad-base64", "not-an-image", "no-image", "topk-0", "url-without-allow-urls"])
def test_paddlex_errors_come_in_its_envelope_with_the_http_status(predictor, body, status,
                                                                 says):
    answer = call(create_app(predictor), lambda c: c.post("/image-classification", json=body))
    assert answer.status_code == status
    envelope = answer.json()
    assert envelope["errorCode"] == status and "result" not in envelope
    assert says in envelope["errorMsg"] and envelope["errorMsg"].endswith(".")


def test_paddlex_image_url_is_fetched_only_with_allow_urls(predictor, images, expected,
                                                         tmp_path):
    import functools
    import http.server
    import threading

    (tmp_path / "cat.jpg").write_bytes(images["chelsea"])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as site:
        threading.Thread(target=site.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{site.server_address[1]}/cat.jpg"
        refused = call(create_app(predictor),
                       lambda c: c.post("/image-classification", json={"image": url}))
        fetched = call(create_app(predictor, allow_urls=True),
                       lambda c: c.post("/image-classification", json={"image": url}))
        site.shutdown()
    assert refused.status_code == 400
    assert fetched.status_code == 200
    ids = [c["id"] for c in fetched.json()["result"]["categories"]]
    assert ids == expected["chelsea"]["class_ids"]


def test_v2_metadata_names_the_card_model_and_name_sets_it(predictor):
    async def requests(client):
        return [await client.get(path) for path in (
            "/v2/health/live", "/v2/health/ready", "/v2/models/EfficientNet_lite0",
            "/v2/models/cats")]

    live, ready, metadata, unknown = call(create_app(predictor), requests)
    assert live.status_code == ready.status_code == metadata.status_code == 200
    assert metadata.json()["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    assert {o["name"]: o["datatype"] for o in metadata.json()["outputs"]} == \
        {"scores": "FP32", "class_ids": "INT64", "label_names": "BYTES"}
    assert unknown.status_code == 404 and "EfficientNet_lite0" in unknown.json()["error"]
    renamed = call(create_app(predictor, name="cats"),
                   lambda client: client.get("/v2/models/cats"))
    assert renamed.status_code == 200 and renamed.json()["name"] == "cats"


def test_metrics_count_requests_by_route_and_status_with_latency_batch_and_queue(
        predictor, images):
    from prometheus_client.parser import text_string_to_metric_families

    async def requests(client):
        await client.post("/predict", content=images["coffee"])
        await client.post("/predict", content=b"not an image")
        await client.get("/v2/models/EfficientNet_lite0")
        return await client.get("/metrics")

    answer = call(create_app(predictor), requests)
    assert answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    counted = {(s.labels["route"], s.labels["status"]): s.value
               for s in families["ppinfer_requests"].samples if s.name.endswith("_total")}
    assert counted[("/predict", "200")] == 1 and counted[("/predict", "400")] == 1
    assert counted[("/v2/models/{name}", "200")] == 1
    assert families["ppinfer_request_seconds"].type == "histogram"
    assert families["ppinfer_batch_size"].type == "histogram"
    assert families["ppinfer_queue_depth"].type == "gauge"


def test_the_page_offers_an_upload_and_names_the_model(predictor):
    answer = call(create_app(predictor), lambda client: client.get("/"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert 'type="file"' in answer.text and "EfficientNet_lite0" in answer.text


def test_an_app_mounted_in_a_users_fastapi_service_starts_its_batcher_on_first_use(
        predictor, images, expected):
    from fastapi import FastAPI

    service = FastAPI()
    service.mount("/classify", create_app(predictor))

    async def requests(client):
        answer = await client.post("/classify/predict", content=images["astronaut"])
        return answer, (await client.get("/classify/metrics")).text

    answer, metrics = call(service, requests)
    assert answer.status_code == 200
    assert answer.json()["class_ids"] == expected["astronaut"]["class_ids"]
    assert 'ppinfer_requests_total{route="/predict",status="200"} 1.0' in metrics


def test_ppinfer_serve_is_the_python_entry_point_and_help_loads_no_web_framework():
    import subprocess
    import sys

    from ppinfer.serving.server import serve

    assert ppinfer.serve is serve
    code = ("import sys\nfrom ppinfer.cli import cli\ntry:\n    cli(['serve', '--help'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'paddle', 'starlette') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_impossible_app_settings_are_one_sentence(predictor):
    with pytest.raises(ppinfer.ConfigError, match="max_batch may be at most 256"):
        create_app(predictor, max_batch=1000)
    with pytest.raises(ppinfer.ConfigError, match="name"):
        create_app(predictor, name="a/b")
