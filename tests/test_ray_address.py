"""``--ray-address`` that is not a Ray cluster (issue 23, item 6): an open port that never
answers, or answers in another protocol, is refused in one sentence within a time limit; Ray
itself waited there for 10 minutes. A real Ray head passes the same check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ppinfer.errors import ConfigError
from ppinfer.runners.ray_runner import check_reachable

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.paddle3_only  # Ray plumbing: see tests/conftest.py


def _server(greeting: bytes | None):
    """A TCP server on a free port that accepts and then says ``greeting`` (None: nothing)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            if greeting:
                conn.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    return listener, f"127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("greeting", [None, b"SSH-2.0-OpenSSH_9.6\r\n"],
                         ids=["silent-port", "ssh-server"])
def test_an_open_port_that_is_not_ray_is_refused_within_the_time_limit(greeting):
    listener, address = _server(greeting)
    try:
        start = time.monotonic()
        with pytest.raises(ConfigError, match=(
                rf"^{address} answers, but not as a Ray cluster \(no gRPC reply within 2 s\): "
                r"check the address and port")):
            check_reachable(address, timeout=2.0)
        assert time.monotonic() - start < 5
        with pytest.raises(ConfigError, match="answers, but not as a Ray cluster"):
            check_reachable(f"ray://{address}", timeout=2.0)
    finally:
        listener.close()


def test_predict_with_a_ray_address_that_is_not_ray_ends_in_one_sentence(photos):
    pytest.importorskip("ray.data")
    listener, address = _server(None)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    env.pop("RAY_ADDRESS", None)
    try:
        run = subprocess.run([sys.executable, "-m", "ppinfer", "predict", "-i",
                              str(photos["chelsea"]), "--runner", "ray", "--ray-address",
                              address], capture_output=True, text=True, env=env, timeout=120)
    finally:
        listener.close()
    assert run.returncode == 2  # was: no answer for 10 minutes
    assert run.stderr.strip().splitlines()[-1] == (
        f"Error: {address} answers, but not as a Ray cluster (no gRPC reply within 10 s): check "
        "the address and port (`ray start --head` prints them; Ray Client listens on "
        "ray://HEAD:10001).")


def test_a_real_ray_head_passes_the_check():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("another test's Ray is running in this process")
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        check_reachable(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
