"""ppinfer serve's fault rows that hold inside the app (docs/serving.md, "What happens when…"):
413 before the body is read, 400 and the server keeps serving, 503 with Retry-After when full,
504 past the time limit, one bad image never fails the others in its engine call, and no
request names a file on the server. The real server's rows (a raw socket's 413, signals) are in
test_serve_process.py.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import zlib

import numpy as np
import pytest

pytest.importorskip("fastapi")

import ppinfer  # noqa: E402
from ppinfer.engines.analysis import AnalysisEngine  # noqa: E402
from ppinfer.serving import create_app  # noqa: E402

from .test_serve import batch_histogram, call  # noqa: E402


@pytest.fixture(scope="module")
def predictor():
    with ppinfer.load(engine="analysis", batch_size=8) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def jpeg(photos) -> bytes:
    return photos["chelsea"].read_bytes()


@pytest.fixture(scope="module")
def alone(predictor, jpeg) -> dict:
    """The chelsea photo's answer from a request of its own."""
    answer = call(create_app(predictor), lambda c: c.post("/predict", content=jpeg))
    assert answer.status_code == 200
    return answer.json()


class Body:
    """A request body that streams ``chunks`` and can hold back its end until released,
    counting what the server read."""

    def __init__(self, *chunks: bytes, hold: bool = False) -> None:
        self.chunks, self.hold, self.sent = chunks, hold, 0
        self.release = asyncio.Event() if hold else None

    async def __aiter__(self):
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        if self.hold:
            await self.release.wait()


def test_a_declared_length_over_the_limit_is_413_before_any_byte_is_read(predictor):
    body = Body(b"x" * 1000)
    app = create_app(predictor, max_body_bytes=5000)
    answer = call(app, lambda c: c.post("/predict", content=body,
                                        headers={"Content-Length": "100000000"}))
    assert answer.status_code == 413
    assert "over the server's limit of 5000 bytes" in answer.json()["error"]
    assert body.sent == 0


def test_a_streamed_body_over_the_limit_is_413_at_the_first_chunk_past_it(predictor):
    body = Body(*[b"x" * 1000] * 10_000)  # 10 MB offered, in chunks, with no length
    answer = call(create_app(predictor, max_body_bytes=5000),
                  lambda c: c.post("/predict", content=body))
    assert answer.status_code == 413
    assert body.sent <= 6  # the server stopped reading at the sixth kilobyte


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels (the data is a 1x1 image)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00")) + chunk(b"IEND", b""))


def test_undecodable_and_oversized_images_are_400_and_the_server_keeps_serving(
        predictor, jpeg, alone):
    async def requests(client):
        junk = await client.post("/predict", content=b"not an image")
        huge = await client.post("/predict", content=_png_claiming(30000, 30000))
        empty = await client.post("/predict", content=b"")
        good = await client.post("/predict", content=jpeg)
        return junk, huge, empty, good

    junk, huge, empty, good = call(create_app(predictor), requests)
    assert junk.status_code == huge.status_code == empty.status_code == 400
    assert "not an image OpenCV can decode" in junk.json()["error"]
    assert "30000x30000 pixels" in huge.json()["error"]
    assert "empty" in empty.json()["error"]
    for answer in (junk, huge, empty):
        assert answer.json()["error"].count(". ") == 0  # one sentence
    assert good.status_code == 200 and good.json() == alone


def test_a_full_server_answers_503_with_retry_after_without_reading_the_body(predictor, jpeg,
                                                                           alone):
    app = create_app(predictor, max_queue=1)
    held = Body(jpeg[:1000], jpeg[1000:], hold=True)
    refused_body = Body(jpeg)

    async def requests(client):
        first = asyncio.ensure_future(client.post("/predict", content=held))
        while app.state.ppinfer.batcher.admitted < 1:  # the first request holds the place
            await asyncio.sleep(0.01)
        second = await client.post("/predict", content=refused_body)
        held.release.set()
        return await first, second

    first, second = call(app, requests)
    assert second.status_code == 503
    assert second.headers["Retry-After"] == "1"
    assert "busy" in second.json()["error"]
    assert refused_body.sent == 0
    assert first.status_code == 200 and first.json() == alone


def test_a_request_past_the_timeout_is_504_in_its_protocols_envelope(predictor, jpeg):
    app = create_app(predictor, timeout=0.2)
    stalled = Body(jpeg[:1000], hold=True)  # never completes: the wait is the server's

    async def requests(client):
        answer = await client.post("/image-classification", content=stalled,
                                   headers={"Content-Type": "application/json"})
        stalled.release.set()
        return answer

    answer = call(app, requests)
    assert answer.status_code == 504
    assert answer.json()["errorCode"] == 504
    assert "--timeout of 0.2 s" in answer.json()["errorMsg"]


def test_an_undecodable_image_fails_only_its_own_request_among_concurrent_ones(
        predictor, jpeg, alone):
    app = create_app(predictor, max_batch=8, max_delay_ms=2000)
    bodies = [jpeg] * 7 + [b"GIF89a\x01\x00\x01\x00 broken"]

    async def requests(client):
        return await asyncio.gather(*(client.post("/predict", content=b) for b in bodies))

    answers = call(app, requests)
    assert [a.status_code for a in answers] == [200] * 7 + [400]
    assert all(a.json() == alone for a in answers[:7])


class BlankRefusingEngine(AnalysisEngine):
    """Paddle Inference that refuses a batch holding a blank image (every pixel alike): a
    stand-in for an image that decodes yet breaks the engine."""

    def execute(self, batch: np.ndarray) -> np.ndarray:
        flat = batch.reshape(batch.shape[0], -1)
        if np.any(flat.max(axis=1) == flat.min(axis=1)):
            raise RuntimeError("this engine cannot run a blank image")
        return super().execute(batch)


def test_an_image_that_breaks_the_engine_fails_only_its_own_request_in_the_group(
        predictor, jpeg, alone):
    import cv2

    engine = BlankRefusingEngine(predictor.source, predictor.config)
    refusing = ppinfer.Predictor(engine, max_pixels=predictor.max_pixels,
                                 max_image_bytes=predictor.max_image_bytes)
    blank = cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    app = create_app(refusing, max_batch=8, max_delay_ms=2000)
    bodies = [jpeg] * 3 + [blank] + [jpeg] * 4

    async def requests(client):
        answers = await asyncio.gather(*(client.post("/predict", content=b) for b in bodies))
        return answers, (await client.get("/metrics")).text

    answers, metrics = call(app, requests)
    assert [a.status_code for a in answers] == [200] * 3 + [500] + [200] * 4
    assert answers[3].json()["error"] == ("The engine failed on this image (this engine "
                                          "cannot run a blank image).")
    assert all(a.json() == alone for i, a in enumerate(answers) if i != 3)
    assert batch_histogram(metrics) == (1, 8)  # all eight were one group, which failed


def test_no_request_makes_the_server_open_a_file_it_names(predictor, jpeg, alone):
    passwd = "/etc/passwd"
    app = create_app(predictor, allow_urls=True)

    async def requests(client):
        upload = await client.post("/predict", files={"file": (passwd, jpeg)})
        raw = await client.post("/predict", content=passwd.encode())
        paddlex = [await client.post("/image-classification", json={"image": image})
                   for image in (passwd, "file:///etc/passwd", "../../../../etc/passwd")]
        v2 = await client.post("/v2/models/EfficientNet_lite0/infer", json={"inputs": [{
            "name": "image", "datatype": "BYTES", "shape": [1], "data": [passwd]}]})
        return upload, raw, paddlex, v2

    upload, raw, paddlex, v2 = call(app, requests)
    assert upload.status_code == 200
    assert upload.json() == {**alone, "file_name": passwd}  # the name is only echoed
    for answer in (raw, *paddlex, v2):
        assert answer.status_code == 400
        assert "root:" not in answer.text


def test_v2_requests_that_do_not_fit_the_protocol_are_400_in_one_sentence(predictor, jpeg):
    good = base64.b64encode(jpeg).decode()
    cases = [
        {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [1.0]}]},
        {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": [good]}]},
        {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1000], "data": [good]}]},
        {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [good]}],
         "outputs": [{"name": "logits"}]},
        {"inputs": "image"},
    ]

    async def requests(client):
        return [await client.post("/v2/models/EfficientNet_lite0/infer", json=case)
                for case in cases]

    for answer in call(create_app(predictor), requests):
        assert answer.status_code == 400
        assert answer.json()["error"].endswith(".")


def test_a_v2_request_with_one_unreadable_image_is_400_naming_it(predictor, jpeg, alone):
    good = base64.b64encode(jpeg).decode()
    bad = base64.b64encode(b"not an image").decode()

    async def requests(client):
        mixed = await client.post("/v2/models/EfficientNet_lite0/infer", json={"inputs": [{
            "name": "image", "datatype": "BYTES", "shape": [3], "data": [good, bad, good]}]})
        after = await client.post("/predict", content=jpeg)
        return mixed, after

    app = create_app(predictor)
    mixed, after = call(app, requests)
    assert mixed.status_code == 400
    assert mixed.json()["error"].startswith("image[1] is not an image OpenCV can decode")
    assert after.status_code == 200 and after.json() == alone
    assert app.state.ppinfer.batcher.admitted == 0 and app.state.ppinfer.batcher.decoding == 0
