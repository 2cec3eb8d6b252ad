"""A refused checkpoint ends the process as documented, however Paddle was loaded: the command
line exits 2 with one sentence, the Python API raises CheckpointError and the interpreter then
exits 0; nothing from glibc's heap checks or Paddle's C++ side follows on stderr.

Each case runs in its own interpreter: the damage this guards against (issue 21) showed only
when the process exited, after the right message, as ``corrupted double-linked list`` and
Paddle's C++ traceback, exit 134.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

NATIVE_NOISE = ("corrupted", "free()", "double free", "C++ Traceback", "Error Message Summary")

API = """
import sys, ppinfer
try:
    ppinfer.load(engine="executor-persistable", **{options!r})
except ppinfer.CheckpointError as exc:
    print(type(exc).__name__)
"""


@pytest.fixture(scope="module")
def mismatches(tmp_path_factory) -> dict[str, dict]:
    """Checkpoints the architecture refuses, as ``ppinfer.load`` options."""
    from ppinfer.models.efficientnet import lite0_weights_path

    junk = tmp_path_factory.mktemp("junk") / "model.pdparams"
    junk.write_bytes(b"not a checkpoint\n" * 64)
    lite0 = str(lite0_weights_path())
    return {
        "class count": {"model_name": "EfficientNet_lite0", "params_file": lite0, "class_num": 10},
        "model name": {"model_name": "PPLCNet_x0_25", "params_file": lite0},
        "not a checkpoint": {"model_name": "EfficientNet_lite0", "params_file": str(junk)},
    }


def _run(args: list[str], import_mode: str, home) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PPINFER_PADDLE_IMPORT"}
    env["PPINFER_HOME"] = str(home)
    if import_mode == "full":
        env["PPINFER_PADDLE_IMPORT"] = "full"
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=600, env=env, cwd=home)


def _cli_args(command: str, options: dict) -> list[str]:
    args = ["-m", "ppinfer", command, "--model-name", options["model_name"]]
    if command == "predict":
        args += ["--engine", "executor-persistable", "-p", options["params_file"]]
    else:
        args += ["-p", options["params_file"], "-o", "out"]
    if "class_num" in options:
        args += ["--class-num", str(options["class_num"])]
    return args


def _assert_no_native_noise(run: subprocess.CompletedProcess) -> None:
    noise = [word for word in NATIVE_NOISE if word in run.stderr]
    assert not noise, run.stderr


MODES = pytest.mark.parametrize("import_mode", ["default", "full"])
KINDS = pytest.mark.parametrize("kind", ["class count", "model name", "not a checkpoint"])


@MODES
@KINDS
@pytest.mark.parametrize("command", ["predict", "export"])
def test_a_refused_checkpoint_exits_2_with_one_sentence(mismatches, tmp_path, kind, command,
                                                        import_mode):
    run = _run(_cli_args(command, mismatches[kind]), import_mode, tmp_path)
    _assert_no_native_noise(run)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("Error: ") and run.stderr.count("\n") == 1, run.stderr


@MODES
@KINDS
def test_a_refused_checkpoint_raises_and_the_interpreter_exits_0(mismatches, tmp_path, kind,
                                                                 import_mode):
    run = _run(["-c", API.format(options=mismatches[kind])], import_mode, tmp_path)
    _assert_no_native_noise(run)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "CheckpointError\n"
