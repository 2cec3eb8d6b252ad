"""``ppinfer serve`` as a process and a group: a port in use, stopping with requests in flight,
and a group the engine fails (docs/serving.md, faults)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from ppinfer.serving import create_app  # noqa: E402

from .test_serve import Running, expected, files, free_port, predictor, same  # noqa: E402,F401


def _serve(port: int) -> subprocess.Popen:
    env = {**os.environ, "PPINFER_ENGINE": "analysis"}
    return subprocess.Popen([sys.executable, "-m", "ppinfer", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_ready(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)


def test_a_port_in_use_is_one_sentence_and_exit_2_before_the_model_loads():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = _serve(port)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert err == (f"Error: Cannot listen on 127.0.0.1:{port} (Address already in use): "
                   "choose another --port.\n")


def _request_in_flight(port: int, body: bytes) -> socket.socket:
    """A request whose headers and first half are sent: in flight until the rest comes."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
    conn.sendall(head.encode() + body[: len(body) // 2])
    return conn


def _read_all(conn: socket.socket) -> bytes:
    data = b""
    while chunk := conn.recv(65536):
        data += chunk
    return data


def test_sigterm_finishes_the_request_in_flight_then_exits_0(photos):
    port = free_port()
    proc = _serve(port)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}")
        body = photos["chelsea"].read_bytes()
        conn = _request_in_flight(port, body)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # still waiting for the request it has
        conn.sendall(body[len(body) // 2:])
        answer = _read_all(conn)
        conn.close()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"class_ids"' in answer
    assert proc.returncode == 0, err
    assert "Stopping: no new connections" in err and "Traceback" not in err


def test_a_second_ctrl_c_exits_130_at_once_without_waiting_for_the_request_in_flight(photos):
    port = free_port()
    proc = _serve(port)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}")
        conn = _request_in_flight(port, photos["chelsea"].read_bytes())
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        conn.close()
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Stopped without finishing the requests in flight." in err


def test_an_image_the_engine_cannot_take_fails_only_its_own_request_in_its_group(  # noqa: F811
        predictor, files, expected):  # noqa: F811
    import cv2

    app = create_app(predictor, max_batch=8, max_delay_ms=2000)
    context = app.state.ppinfer
    real, calls = context.batcher.infer, []

    def refusing_blank(batch: np.ndarray) -> np.ndarray:
        # The real engine, which here refuses a batch holding a blank image (every value
        # alike): a stand-in for an image that decodes yet breaks the engine.
        calls.append(len(batch))
        flat = batch.reshape(len(batch), -1)
        if np.any(flat.max(axis=1) == flat.min(axis=1)):
            raise RuntimeError("this engine cannot run a blank image")
        return real(batch)

    context.batcher.infer = refusing_blank
    blank = cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    bodies = [files["chelsea"]] * 3 + [blank] + [files["chelsea"]] * 4
    running = Running(app)
    try:
        async def burst():
            async with httpx.AsyncClient(timeout=60) as client:
                return await asyncio.gather(*(client.post(f"{running.url}/predict", content=b)
                                              for b in bodies))

        answers = asyncio.run(burst())
    finally:
        running.stop()
    assert [a.status_code for a in answers] == [200] * 3 + [500] + [200] * 4
    assert answers[3].json()["error"] == ("The model could not run this image: this engine "
                                          "cannot run a blank image")
    for i, answer in enumerate(answers):
        if i != 3:
            same(answer.json(), expected["chelsea"])
    assert calls[0] == 8 and calls[1:] == [1] * 8  # one group of eight, then one by one


def test_with_allow_urls_a_paddlex_image_url_is_fetched_within_the_body_limit(  # noqa: F811
        predictor, files, expected, tmp_path):  # noqa: F811
    import functools
    import http.server
    import threading

    (tmp_path / "cat.jpg").write_bytes(files["chelsea"])
    (tmp_path / "big.bin").write_bytes(b"\0" * 300_000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    files_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files_server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files_server.server_address[1]}"
    running = Running(create_app(predictor, allow_urls=True, max_body_bytes=200_000))
    try:
        def ask(url):
            return httpx.post(f"{running.url}/image-classification", json={"image": url})

        cat, big, missing = ask(f"{base}/cat.jpg"), ask(f"{base}/big.bin"), ask(f"{base}/no.jpg")
    finally:
        running.stop()
        files_server.shutdown()
    want = expected["chelsea"]
    assert cat.status_code == 200, cat.text
    assert [c["id"] for c in cat.json()["result"]["categories"]] == want.class_ids
    assert big.status_code == 400 and "is over 200000 bytes" in big.json()["errorMsg"]
    assert missing.status_code == 400 and "Cannot fetch" in missing.json()["errorMsg"]
