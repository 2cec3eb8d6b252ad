"""`ppinfer serve` (issue 18): the three ways in, each with a client ppinfer did not write
(curl-like raw bodies and multipart through httpx, tritonclient for KServe v2), answers equal to
`ppinfer predict`'s, batches formed under concurrent load, and the fault rows.

A real uvicorn serves a real engine (the built-in model on analysis) on a loopback port, in a
thread of this process; the signal tests run `ppinfer serve` as a process of its own.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import ppinfer  # noqa: E402
from ppinfer.serving import create_app  # noqa: E402

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

MODEL = "EfficientNet_lite0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """uvicorn serving ``app`` on a free loopback port, in a thread, until stop()."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def predictor():
    with ppinfer.load(engine="analysis") as p:
        yield p


@pytest.fixture(scope="module")
def server(predictor):
    running = Running(create_app(predictor, max_batch=8, max_delay_ms=20))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def files(photos) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in photos.items()}


@pytest.fixture(scope="module")
def expected(predictor, photos) -> dict[str, ppinfer.Result]:
    return {name: predictor.predict(str(path))[0] for name, path in photos.items()}


def same(result: dict, want: ppinfer.Result) -> None:
    assert result["class_ids"] == want.class_ids
    np.testing.assert_allclose(result["scores"], want.scores, atol=1e-6)
    assert result["label_names"] == want.label_names


# -- the three ways in ------------------------------------------------------------------------

def test_plain_route_answers_as_predict_json_does_for_the_same_file(server, files, expected):
    raw = httpx.post(f"{server.url}/predict", content=files["chelsea"])
    assert raw.status_code == 200, raw.text
    same(raw.json(), expected["chelsea"])
    upload = httpx.post(f"{server.url}/predict",
                        files={"file": ("coffee.jpg", files["coffee"], "image/jpeg")})
    assert upload.json()["file_name"] == "coffee.jpg"
    same(upload.json(), expected["coffee"])


def test_an_upload_name_never_names_a_file_on_the_server(server, files, expected):
    answer = httpx.post(f"{server.url}/predict",
                        files={"file": ("../../etc/passwd", files["chelsea"], "image/jpeg")})
    assert answer.json()["file_name"] == "passwd"  # the client's bytes, named, never read
    same(answer.json(), expected["chelsea"])


def test_paddlex_contract_envelope_and_topk(server, files, expected):
    body = {"image": base64.b64encode(files["astronaut"]).decode(), "topk": 2}
    answer = httpx.post(f"{server.url}/image-classification", json=body).json()
    assert answer["errorCode"] == 0 and answer["errorMsg"] == "Success" and answer["logId"]
    categories = answer["result"]["categories"]
    want = expected["astronaut"]
    assert [c["id"] for c in categories] == want.class_ids[:2]
    assert [c["name"] for c in categories] == want.label_names[:2]
    np.testing.assert_allclose([c["score"] for c in categories], want.scores[:2], atol=1e-6)


@pytest.mark.parametrize(("image", "status", "says"), [
    ("not base64 at all!", 400, "neither base64 nor a URL"),
    ("https://example.com/cat.jpg", 400, "fetches no URLs"),
    (base64.b64encode(b"not an image").decode(), 400, "not an image OpenCV can decode"),
])
def test_paddlex_errors_come_in_the_same_envelope(server, image, status, says):
    answer = httpx.post(f"{server.url}/image-classification", json={"image": image})
    assert answer.status_code == status
    doc = answer.json()
    assert doc["errorCode"] == status and says in doc["errorMsg"] and "result" not in doc


def test_kserve_v2_with_tritonclient(server, files, expected):
    http = pytest.importorskip("tritonclient.http")
    client = http.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.get_model_metadata(MODEL)["inputs"][0]["datatype"] == "BYTES"
    image = http.InferInput("image", [2], "BYTES")
    image.set_data_from_numpy(np.array([files["chelsea"], files["coffee"]], dtype=object))
    result = client.infer(MODEL, [image])
    ids, scores, names = (result.as_numpy(n) for n in ("class_ids", "scores", "label_names"))
    assert ids.dtype == np.int64 and scores.dtype == np.float32 and ids.shape == (2, 5)
    for row, name in enumerate(("chelsea", "coffee")):
        assert ids[row].tolist() == expected[name].class_ids
        np.testing.assert_allclose(scores[row], expected[name].scores, atol=1e-6)
        assert [n.decode() if isinstance(n, bytes) else n for n in names[row]] == \
            expected[name].label_names


def test_kserve_v2_names_only_its_own_model(server):
    assert httpx.get(f"{server.url}/v2/models/ResNet50_vd").status_code == 404
    assert httpx.get(f"{server.url}/v2/health/live").json() == {"live": True}


# -- load and faults --------------------------------------------------------------------------

def test_32_concurrent_clients_get_their_own_answers_in_shared_batches(server, files, expected):
    names = ["chelsea", "coffee", "astronaut"] * 11
    names = names[:32]

    async def one(client, name):
        answer = await client.post(f"{server.url}/predict", content=files[name])
        return name, answer.json()

    async def all_at_once():
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(one(client, n) for n in names))

    before = _metric(server, "ppinfer_batch_size_count"), _metric(server, "ppinfer_batch_size_sum")
    for name, answer in asyncio.run(all_at_once()):
        same(answer, expected[name])
    calls = _metric(server, "ppinfer_batch_size_count") - before[0]
    images = _metric(server, "ppinfer_batch_size_sum") - before[1]
    assert images == 32
    assert calls < 32, "no engine call took more than one request"


def _metric(server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    return float(next(line.split()[-1] for line in text.splitlines()
                      if line.startswith(name + " ")))


def test_a_bad_image_is_400_in_one_sentence_and_the_server_keeps_serving(server, files):
    bad = httpx.post(f"{server.url}/predict", content=b"\xff\xd8\xff\xe0 not a jpeg")
    assert bad.status_code == 400
    assert bad.json()["error"].endswith(".") and "\n" not in bad.json()["error"]
    assert httpx.post(f"{server.url}/predict", content=files["coffee"]).status_code == 200


def test_metrics_count_requests_by_route_and_status(server, files):
    httpx.post(f"{server.url}/predict", content=files["coffee"])
    text = httpx.get(f"{server.url}/metrics").text
    assert 'ppinfer_requests_total{route="/predict",status="200"}' in text
    assert "ppinfer_queue_depth" in text and "ppinfer_request_seconds_bucket" in text


def test_the_page_offers_an_upload(server):
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and 'type="file"' in page.text and MODEL in page.text


@pytest.fixture
def small(predictor):
    """A server whose limits are small, and whose engine can be slowed down (the real engine,
    called after a pause) to hold requests in the queue."""
    app = create_app(predictor, max_batch=1, max_queue=1, timeout_s=1.0, max_body_bytes=10_000)
    context = app.state.ppinfer
    pause = {"s": 0.0}
    real = context.batcher.infer

    def slow(batch):
        time.sleep(pause["s"])
        return real(batch)

    context.batcher.infer = slow
    running = Running(app)
    yield running, pause
    running.stop()


def test_a_body_over_the_limit_is_413_before_it_is_read(small):
    running, _ = small
    declared = httpx.post(f"{running.url}/predict", content=b"x" * 20_000)
    assert declared.status_code == 413 and "over the limit of 10000 bytes" in declared.text

    def chunks():  # no Content-Length: refused while it streams
        for _ in range(40):
            yield b"x" * 1000

    streamed = httpx.post(f"{running.url}/predict", content=chunks())
    assert streamed.status_code == 413


def test_a_full_queue_is_503_with_retry_after_and_a_long_wait_is_504(small, files):
    running, pause = small
    pause["s"] = 0.6
    small_photo = _small_jpeg()

    async def burst():
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(client.post(f"{running.url}/predict",
                                                      content=small_photo) for _ in range(6)))

    answers = asyncio.run(burst())
    statuses = sorted(a.status_code for a in answers)
    assert 503 in statuses, statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
    assert 504 in statuses or 200 in statuses, statuses
    pause["s"] = 1.5  # longer than the server's timeout of 1 s
    late = httpx.post(f"{running.url}/predict", content=small_photo, timeout=30)
    assert late.status_code == 504 and "timeout of 1 s" in late.json()["error"]


def _small_jpeg() -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", np.full((64, 64, 3), 90, np.uint8))
    assert ok
    return data.tobytes()


def test_mounted_in_another_fastapi_service_the_app_answers(predictor, files, expected):
    from fastapi import FastAPI

    service = FastAPI()
    app = create_app(predictor)
    service.mount("/classify", app)
    running = Running(service)
    try:
        answer = httpx.post(f"{running.url}/classify/predict", content=files["chelsea"])
    finally:
        running.stop()
        app.state.ppinfer.close()  # never drained: its lifespan was not passed on
    assert answer.status_code == 200, answer.text
    same(answer.json(), expected["chelsea"])


def _ppinfer_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("ppinfer-")}


def test_mounted_with_its_lifespan_the_host_drains_it_and_no_thread_is_left(predictor, files):
    """docs/serving.md: the host passes the app's lifespan on, so its batcher starts and stops
    with the host's; nothing of it outlives the server (a batcher left running keeps its engine
    alive until the interpreter tears down, after the runtime beneath it)."""
    from fastapi import FastAPI

    before = _ppinfer_threads()
    app = create_app(predictor)
    service = FastAPI(lifespan=app.router.lifespan_context)
    service.mount("/classify", app)
    running = Running(service)
    try:
        assert app.state.ppinfer.ready  # started by the host's lifespan, before any request
        answer = httpx.post(f"{running.url}/classify/predict", content=files["chelsea"])
    finally:
        running.stop()
    assert answer.status_code == 200, answer.text
    assert not app.state.ppinfer.ready
    assert not running.thread.is_alive()
    deadline = time.monotonic() + 10
    while _ppinfer_threads() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _ppinfer_threads() - before


def test_the_server_binds_loopback_unless_told_otherwise():
    import inspect

    from ppinfer.cli import cli
    from ppinfer.serving.server import serve

    host = next(p for p in cli.commands["serve"].params if p.name == "host")
    assert host.default == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
