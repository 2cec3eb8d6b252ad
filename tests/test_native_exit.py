"""A checkpoint that does not fit ends in its one sentence and its exit status, with nothing
from glibc or Paddle's C++ after it (issue 21): loading Paddle's core alone for a fast start and
importing Paddle whole later corrupted the heap at exit once a static program's scope outlived
a refused checkpoint ("corrupted double-linked list", exit 134, every run). Engines that run
Paddle's Python side now import it whole first. Each case runs in a process of its own, a few
times (the corruption showed at teardown)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ppinfer.models.efficientnet import lite0_weights_path

NATIVE_NOISE = ("corrupted", "free()", "double free", "C++ Traceback", "Error Message Summary",
                "FatalError")
RUNS = 3


def _clean(proc: subprocess.CompletedProcess) -> None:
    noise = [word for word in NATIVE_NOISE if word in proc.stderr]
    assert not noise, proc.stderr[-2000:]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ppinfer", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def not_a_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("junk") / "model.pdparams"
    path.write_bytes(b"this is not a checkpoint" * 10)
    return path


@pytest.mark.parametrize("how", ["", "full"])
@pytest.mark.parametrize("case", ["class-count", "model-name", "not-a-checkpoint"])
def test_a_checkpoint_mismatch_in_predict_exits_2_with_nothing_native_after_it(
        case, how, not_a_checkpoint):
    params, name, extra = str(lite0_weights_path()), "EfficientNet_lite0", []
    if case == "class-count":
        extra = ["--class-num", "10"]
    elif case == "model-name":
        name = "ResNet50_vd"
    else:
        params = str(not_a_checkpoint)
    for _ in range(RUNS):
        proc = _cli("predict", "--engine", "executor-persistable", "--model-name", name,
                    "-p", params, *extra, env={"PPINFER_PADDLE_IMPORT": how})
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert proc.stderr.startswith("Error: ") and len(proc.stderr.splitlines()) == 1
        _clean(proc)


def test_the_api_raises_checkpoint_error_and_the_interpreter_exits_0():
    code = ("import ppinfer\n"
            "from ppinfer.models.efficientnet import lite0_weights_path\n"
            "try:\n"
            "    ppinfer.load(engine='executor-persistable', model_name='EfficientNet_lite0',\n"
            "                 params_file=lite0_weights_path(), class_num=10)\n"
            "except ppinfer.CheckpointError as exc:\n"
            "    print('caught:', exc)\n")
    for _ in range(RUNS):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0 and proc.stdout.startswith("caught: "), proc.stderr
        _clean(proc)


def test_an_export_with_a_mismatch_exits_2_cleanly(tmp_path):
    proc = _cli("export", "-m", "EfficientNet_lite0", "-p", str(lite0_weights_path()),
                "--class-num", "10", "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    _clean(proc)
