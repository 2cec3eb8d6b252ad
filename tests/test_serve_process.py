"""``ppinfer serve`` as users run it: a real uvicorn in a subprocess on a free loopback port,
reached by clients ppinfer did not write (tritonclient, curl, a raw socket), and stopped by
signals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("uvicorn")

from .test_serve import assert_same  # noqa: E402

STARTUP_S = 180  # the first start may export the built-in model on a loaded machine
SRC = Path(__file__).resolve().parents[1] / "src"


class Server:
    """``ppinfer serve --port 0 ...`` in a subprocess; ``url`` from its ready line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ppinfer", "serve", "--port", "0", "--engine", "analysis",
             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"at (http://\S+) \(Ctrl-C", line)
            if found:
                self.url = found.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return
        self.stop()
        raise AssertionError("ppinfer serve did not start:\n" + "".join(self.lines))

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, "".join(self.lines) + err

    def wait(self) -> tuple[int, str]:
        _, err = self.proc.communicate(timeout=120)
        return self.proc.returncode, "".join(self.lines) + err


@pytest.fixture(scope="module")
def server():
    running = Server("--max-body-bytes", "2000000")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def expected(photos) -> dict[str, dict]:
    """``ppinfer predict --json`` on the photos, by name."""
    from click.testing import CliRunner

    from ppinfer.cli import cli

    paths = {name: str(path) for name, path in photos.items()}
    run = CliRunner().invoke(cli, ["predict", "--engine", "analysis", "--json", *paths.values()])
    lines = {json.loads(line)["file_name"]: json.loads(line) for line in run.stdout.splitlines()}
    return {name: lines[path] for name, path in paths.items()}


def test_tritonclient_gets_predicts_answers_for_a_batch_of_files(server, photos, expected):
    http = pytest.importorskip("tritonclient.http")
    client = http.InferenceServerClient(url=server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("EfficientNet_lite0")
    metadata = client.get_model_metadata("EfficientNet_lite0")
    assert metadata["inputs"][0] == {"name": "image", "datatype": "BYTES", "shape": [-1]}
    names = ["chelsea", "astronaut", "coffee"]
    files = np.array([photos[n].read_bytes() for n in names], dtype=np.object_)
    image = http.InferInput("image", [len(names)], "BYTES")
    image.set_data_from_numpy(files)
    result = client.infer("EfficientNet_lite0", [image])
    scores, ids = result.as_numpy("scores"), result.as_numpy("class_ids")
    labels = result.as_numpy("label_names")
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and scores.shape == (3, 5)
    for row, name in enumerate(names):
        assert_same(ids[row], scores[row], expected[name])
        assert [b.decode() for b in labels[row]] == expected[name]["label_names"]


def test_tritonclient_json_outputs_and_top_k_parameter(server, photos, expected):
    http = pytest.importorskip("tritonclient.http")
    client = http.InferenceServerClient(url=server.url.removeprefix("http://"))
    image = http.InferInput("image", [1], "BYTES")
    image.set_data_from_numpy(np.array([photos["coffee"].read_bytes()], dtype=np.object_))
    outputs = [http.InferRequestedOutput("class_ids", binary_data=False),
               http.InferRequestedOutput("scores", binary_data=True)]
    result = client.infer("EfficientNet_lite0", [image], outputs=outputs,
                          parameters={"top_k": 2})
    assert result.as_numpy("class_ids").tolist() == [expected["coffee"]["class_ids"][:2]]
    assert result.as_numpy("scores").shape == (1, 2)


def test_curl_posts_a_raw_file_and_a_multipart_upload(server, photos, expected):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    path = photos["astronaut"]
    raw = subprocess.run(["curl", "-sS", "--data-binary", f"@{path}", f"{server.url}/predict"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    form = subprocess.run(["curl", "-sS", "-F", f"file=@{path}", f"{server.url}/predict"],
                          capture_output=True, text=True, check=True, timeout=120).stdout
    assert_same(json.loads(raw)["class_ids"], json.loads(raw)["scores"], expected["astronaut"])
    assert json.loads(form) == {**json.loads(raw), "file_name": path.name}


def _raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """Send ``head`` and ``body`` (not a whole body: the server must answer without the
    rest) and return the response's first bytes."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + body)
        while not _complete(answer):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # the server closed on the unread rest: done
                break
            if not chunk:
                break
            answer += chunk
    return answer


def _complete(answer: bytes) -> bool:
    """Whether ``answer`` holds a whole response (its headers and Content-Length bytes)."""
    head, found, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.I)
    return bool(found and length and len(body) >= int(length.group(1)))


def test_a_declared_length_over_the_limit_is_413_with_the_body_unsent(server):
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 1000000000\r\n\r\n")
    answer = _raw_request(server.port, head)  # not one byte of the gigabyte is sent
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"over the server's limit of 2000000 bytes" in answer


def test_a_chunked_body_over_the_limit_is_413_while_it_still_streams(server):
    head = (b"POST /image-classification HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 40  # 2.6 MB, and no final chunk
    answer = _raw_request(server.port, head, body)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"errorCode":413' in answer


def test_the_server_listens_on_loopback_only_by_default(server):
    assert server.url.startswith("http://127.0.0.1:")
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    mine = [line.split()[1] for line in listening
            if line.split()[1].endswith(f":{server.port:04X}") and line.split()[3] == "0A"]
    assert mine == [f"0100007F:{server.port:04X}"]  # 127.0.0.1, not 0.0.0.0


def _start_a_request(port: int, jpeg: bytes) -> socket.socket:
    """A /predict request whose body is half sent: in flight until the rest is sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                 + jpeg[: len(jpeg) // 2])
    return sock


def _in_flight(url: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"{url}/metrics", timeout=60).read().decode()
    return float(re.search(r"^ppinfer_requests_in_flight (\S+)$", text, re.M).group(1))


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.05)


def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stop_signal_refuses_new_connections_finishes_the_request_in_flight_exits_0(
        photos, expected, stop):
    server = Server()
    try:
        jpeg = photos["chelsea"].read_bytes()
        sock = _start_a_request(server.port, jpeg)
        _wait_until(lambda: _in_flight(server.url) == 1, "the request is admitted")
        server.proc.send_signal(stop)
        _wait_until(lambda: _refuses_connections(server.port), "the port refuses connections")
        sock.sendall(jpeg[len(jpeg) // 2:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        code, log = server.wait()
    finally:
        server.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert_same(json.loads(body)["class_ids"], json.loads(body)["scores"], expected["chelsea"])
    assert code == 0, log
    assert "finishing the requests in flight" in log


def test_a_second_ctrl_c_exits_at_once_with_a_request_still_in_flight(photos):
    server = Server()
    try:
        sock = _start_a_request(server.port, photos["chelsea"].read_bytes())
        _wait_until(lambda: _in_flight(server.url) == 1, "the request is admitted")
        server.proc.send_signal(signal.SIGINT)
        _wait_until(lambda: _refuses_connections(server.port), "the port refuses connections")
        server.proc.send_signal(signal.SIGINT)
        code, log = server.wait()  # the request never completes: only the signal ends it
        sock.close()
    finally:
        server.stop()
    assert code == 130, log
    assert "Stopped without finishing" in log


def test_a_port_in_use_is_one_sentence_and_exit_2(server):
    run = subprocess.run([sys.executable, "-m", "ppinfer", "serve", "--port", str(server.port)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    assert run.returncode == 2
    assert run.stderr.strip() == (f"Error: Cannot listen on 127.0.0.1:{server.port} (Address "
                                  "already in use): choose another --port.")
