"""A checkpoint that does not fit the architecture is one sentence and the documented exit
status, and the process then ends without a word from glibc or Paddle's C++ (issue 21 item 1).

It used to end in ``corrupted double-linked list`` and a C++ trace from ``ScopePool::~ScopePool``
(exit 134 or 139) whenever Paddle's extension had been loaded alone first: ``import paddle``
then got a copy of that module, Python never released libpaddle's ``_cleanup`` capsule, and
Paddle's scopes were freed by a C++ static destructor after the allocator statistics they
update (:class:`ppinfer.runtime.paddle_core._HandOver` has the whole story). A failed build
showed it most; any static program built after the fast start was exposed. Every case runs
in its own interpreter, since the fault is in how one ends; with Paddle loaded both ways.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from ppinfer.models.efficientnet import lite0_weights_path

# What glibc's heap checks and Paddle's C++ signal handler print; none belongs on stderr.
NATIVE_NOISE = ("corrupted", "free()", "double free", "C++ Traceback", "Error Message Summary")
MODES = ["auto", "full"]  # PPINFER_PADDLE_IMPORT: the extension loaded alone first, or not
REPEATS = 3  # the crash did not show on every run


def _run(args: list[str], mode: str, home: str, cwd=None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()  # as a user's shell would have it
               if k not in ("PPINFER_PADDLE_IMPORT", "PPINFER_ENGINE")
               and not k.startswith(("FLAGS_", "GLOG_"))}
    environ.update(PPINFER_HOME=home, PPINFER_PADDLE_IMPORT=mode)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=600, env=environ, cwd=cwd)


def _assert_no_native_noise(run: subprocess.CompletedProcess) -> None:
    noise = [word for word in NATIVE_NOISE if word in run.stderr]
    assert not noise, f"exit {run.returncode}, {noise} on stderr:\n{run.stderr}"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def mismatches(tmp_path_factory) -> dict[str, tuple[str, str, int | None, str]]:
    """name -> (architecture, checkpoint, --class-num, what the one sentence says)."""
    from ppinfer.checkpoints.torch_reader import read_torch_checkpoint
    from ppinfer.models.efficientnet import torch_state_to_paddle

    root = tmp_path_factory.mktemp("checkpoints")
    lite0 = root / "EfficientNet_lite0.pdparams"  # the lite0 weights as a Paddle state dict
    with open(lite0, "wb") as fh:
        pickle.dump(torch_state_to_paddle(read_torch_checkpoint(lite0_weights_path())), fh,
                    protocol=2)
    junk = root / "notes.pdparams"
    junk.write_text("not a checkpoint\n")
    return {
        "class count": ("EfficientNet_lite0", str(lite0_weights_path()), 10,
                        "EfficientNet_lite0 makes [1280, 10]: pass --class-num 1000."),
        "model name": ("MobileNetV3_small_x1_0", str(lite0), None,
                       "check --model-name matches the checkpoint."),
        "not a checkpoint": ("EfficientNet_lite0", str(junk), None,
                             "is not a readable pickle or is truncated"),
    }


def _repeats(case: str, mode: str) -> int:
    return REPEATS if (case, mode) == ("class count", "auto") else 1  # the lead's crashing case


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", ["class count", "model name", "not a checkpoint"])
def test_predict_with_a_checkpoint_that_does_not_fit_exits_2_and_quietly(
        mismatches, home, case, mode):
    model_name, checkpoint, class_num, says = mismatches[case]
    args = ["-m", "ppinfer", "predict", "--engine", "executor-persistable",
            "--model-name", model_name, "-p", checkpoint]
    args += ["--class-num", str(class_num)] if class_num else []
    for _ in range(_repeats(case, mode)):
        run = _run(args, mode, home)
        _assert_no_native_noise(run)
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("Error: ") and says in run.stderr, run.stderr
        assert run.stdout == ""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", ["class count", "model name", "not a checkpoint"])
def test_export_with_a_checkpoint_that_does_not_fit_exits_2_and_quietly(
        mismatches, home, tmp_path, case, mode):
    model_name, checkpoint, class_num, says = mismatches[case]
    args = ["-m", "ppinfer", "export", "-m", model_name, "-p", checkpoint,
            "-o", str(tmp_path / "out")]
    args += ["--class-num", str(class_num)] if class_num else []
    run = _run(args, mode, home)
    _assert_no_native_noise(run)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("Error: ") and says in run.stderr, run.stderr
    assert not (tmp_path / "out").exists()


API = """
import ppinfer

for model_name, checkpoint, class_num, says in {cases!r}:
    try:
        ppinfer.load(engine="executor-persistable", model_name=model_name,
                     params_file=checkpoint, class_num=class_num)
    except ppinfer.CheckpointError as exc:
        assert says in str(exc), exc
    else:
        raise AssertionError("load() took " + checkpoint)
    try:  # export, after the failed loads (the extension is loaded by then, maybe alone)
        ppinfer.export(model_name, checkpoint, {out!r}, class_num=class_num)
    except ppinfer.CheckpointError as exc:
        assert says in str(exc), exc
    else:
        raise AssertionError("export() took " + checkpoint)
print("raised", flush=True)
"""


@pytest.mark.parametrize("mode", MODES)
def test_the_api_raises_checkpoint_error_and_the_interpreter_then_exits_0(
        mismatches, home, tmp_path, mode):
    code = textwrap.dedent(API).format(cases=list(mismatches.values()),
                                       out=str(tmp_path / "out"))
    for _ in range(REPEATS if mode == "auto" else 1):
        run = _run(["-c", code], mode, home)
        _assert_no_native_noise(run)
        assert run.returncode == 0, run.stderr
        assert run.stdout == "raised\n"


HANDED_OVER = """
import ctypes, sys
from ppinfer.runtime.paddle_core import paddle_core
alone = paddle_core()
assert not alone.whole
import paddle
module = sys.modules["paddle.base.libpaddle"]
get_def = ctypes.pythonapi.PyModule_GetDef
get_def.restype, get_def.argtypes = ctypes.c_void_p, [ctypes.py_object]
print(module is alone.module, paddle.base.libpaddle is module, get_def(module) is not None)
"""


def test_import_paddle_gets_the_very_module_the_fast_start_loaded(home):
    # A copy would carry no module definition, through which Python releases the extension's
    # saved dict (and Paddle's _cleanup capsule in it) when the interpreter ends.
    run = _run(["-c", HANDED_OVER], "auto", home)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "True", "True"]
