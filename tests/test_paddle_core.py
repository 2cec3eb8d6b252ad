"""Predicting loads Paddle's C++ extension alone, not the ``paddle`` package, and gets the same
results; a later ``import paddle`` in the same process still works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppinfer.runtime.paddle_core import _build_facts, _loadable_alone


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items()  # as a user's shell would have it
               if k != "PPINFER_PADDLE_IMPORT" and not k.startswith(("FLAGS_", "GLOG_"))}
    environ.pop("OMP_NUM_THREADS", None)
    environ.pop("KMP_BLOCKTIME", None)
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env=environ)


PREDICT = """
import json, sys
import ppinfer
from ppinfer.pipeline.sample import sample_image_path
predictor = ppinfer.load()
[result] = predictor.predict(sample_image_path())
print(json.dumps({"ids": result.class_ids, "scores": result.scores,
                  "paddle_imported": "paddle" in sys.modules,
                  "omp": __import__("os").environ.get("OMP_NUM_THREADS"),
                  "blocktime": __import__("os").environ.get("KMP_BLOCKTIME")}))
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> str:
    """A ppinfer cache holding the built-in model, exported (which imports paddle) once."""
    home = str(tmp_path_factory.mktemp("home"))
    first = _python(PREDICT, PPINFER_HOME=home)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    assert json.loads(first.stdout)["paddle_imported"] is True
    return home


def test_predict_runs_without_importing_the_paddle_package_and_scores_the_same(home):
    alone = _python(PREDICT, PPINFER_HOME=home)
    whole = _python(PREDICT, PPINFER_HOME=home, PPINFER_PADDLE_IMPORT="full")
    assert alone.returncode == 0 and whole.returncode == 0, alone.stderr + whole.stderr
    alone_out, whole_out = json.loads(alone.stdout), json.loads(whole.stdout)
    assert alone_out["paddle_imported"] is False
    assert whole_out["paddle_imported"] is True
    assert alone_out["ids"] == whole_out["ids"]
    assert alone_out["scores"] == whole_out["scores"]
    # As `import paddle` does, the OpenMP default is one thread unless the user set one.
    assert alone_out["omp"] == whole_out["omp"] == "1"
    # OpenMP threads sleep 1 ms after a parallel region instead of spinning 200 ms.
    assert alone_out["blocktime"] == whole_out["blocktime"] == "1"
    assert alone.stderr == ""  # nothing of Paddle's start-up on stderr


def test_import_paddle_after_the_extension_was_loaded_alone_still_exports(home, tmp_path):
    code = f"""
import sys
import ppinfer
from ppinfer.pipeline.sample import sample_image_path
[before] = ppinfer.load().predict(sample_image_path())
assert "paddle" not in sys.modules
import paddle  # the whole package now, onto the extension already loaded
x = paddle.to_tensor([1.0, 2.0])
assert (x * 2).numpy().tolist() == [2.0, 4.0]
assert paddle.base.libpaddle.AnalysisConfig is paddle.inference.Config
ppinfer.export("EfficientNet_lite0", None, {str(tmp_path / 'lite0')!r})
[after] = ppinfer.load({str(tmp_path / 'lite0')!r}).predict(sample_image_path())
print(before.class_ids[0], after.class_ids[0])
"""
    run = _python(code, PPINFER_HOME=home)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["282", "282"]


def test_import_paddle_binds_the_very_extension_module_loaded_alone():
    # One libpaddle module, which Python clears at exit: with it goes Paddle's `_cleanup` hook,
    # which frees every Scope while Paddle's C++ statics still live (tests/test_native_exit.py).
    code = """
import sys
from ppinfer.runtime.paddle_core import paddle_core
core = paddle_core()
import paddle
print(core.whole, paddle.base.libpaddle is core.module,
      sys.modules["paddle.base.libpaddle"] is core.module,
      any(getattr(finder, "module", None) is core.module for finder in sys.meta_path))
"""
    run = _python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "True", "True", "False"]


def test_paddle_flags_from_the_environment_apply_when_the_extension_is_loaded_alone():
    code = """
import json
from ppinfer.runtime.paddle_core import paddle_core
core = paddle_core()
flags = core.module.globals()
print(json.dumps([core.whole, flags["FLAGS_check_nan_inf"]]))
"""
    alone = json.loads(_python(code, FLAGS_check_nan_inf="1").stdout)
    whole = json.loads(_python(code, FLAGS_check_nan_inf="1", PPINFER_PADDLE_IMPORT="full").stdout)
    assert alone == [False, True]
    assert whole == [True, True]


def test_the_installed_paddle_build_facts_are_read_from_its_version_file():
    import importlib.util

    spec = importlib.util.find_spec("paddle")
    facts = _build_facts(Path(spec.origin).parent / "version" / "__init__.py")
    import paddle

    assert facts is not None and facts["full_version"] == paddle.__version__
    assert _loadable_alone(facts) == (not paddle.is_compiled_with_cuda())


@pytest.mark.parametrize("line", ["cuda_version = '11.8'", "hip_version = '5.7'",
                                  "xpu_xre_version = '4.32'"])
def test_accelerator_builds_are_imported_whole(tmp_path, line):
    version = tmp_path / "__init__.py"
    version.write_text(f"full_version = '2.6.2'\ncuda_version = 'False'\n{line}\n")
    facts = _build_facts(version)
    assert facts is not None and not _loadable_alone(facts)


@pytest.mark.parametrize("text", ["", "full_version = 'dev'\n", "x" * 70_000])
def test_an_unexpected_version_file_means_paddle_is_imported_whole(tmp_path, text):
    version = tmp_path / "__init__.py"
    version.write_text(text)
    assert _build_facts(version) is None


def test_the_users_own_openmp_settings_are_kept(home):
    run = _python(PREDICT, PPINFER_HOME=home, KMP_BLOCKTIME="200", OMP_NUM_THREADS="2")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert (out["blocktime"], out["omp"]) == ("200", "2")


@pytest.mark.parametrize("command", [["info"], ["export", "-m", "EfficientNet_lite0", "-o", "out"]])
@pytest.mark.parametrize("shadow", ["paddle/__init__.py", "paddle.py"])
def test_a_paddle_in_the_current_folder_hiding_paddlepaddle_is_named(tmp_path, shadow, command):
    (tmp_path / shadow).parent.mkdir(exist_ok=True)
    (tmp_path / shadow).write_text("")  # a user's own module that happens to be named paddle
    run = subprocess.run([sys.executable, "-m", "ppinfer", *command], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)  # -m: the folder is on sys.path
    assert run.returncode == 2, run.stderr
    assert run.stderr == (f"Error: The 'paddle' Python imported is {tmp_path / shadow}, not "
                          "PaddlePaddle: a file or folder named paddle in the current directory "
                          "(or on PYTHONPATH) hides the installed one; run from another "
                          "directory or rename it.\n")


RACE = """
import threading, ppinfer
from ppinfer.pipeline.sample import sample_image_path
got = {}
def predict():
    try:
        got["ids"] = ppinfer.load(top_k=1).predict(str(sample_image_path()))[0].class_ids
    except Exception as exc:
        got["error"] = f"{type(exc).__name__}: {exc}"
def use_paddle():
    import paddle
    got["paddle"] = float(paddle.to_tensor([1.0, 2.0]).sum())
threads = [threading.Thread(target=predict), threading.Thread(target=use_paddle)]
[t.start() for t in threads]; [t.join() for t in threads]
print(got)
"""


def test_paddle_imported_in_another_thread_meanwhile_is_said_not_called_a_shadow(home):
    run = _python(RACE, PPINFER_HOME=home)
    assert run.returncode == 0, run.stderr
    got = eval(run.stdout.strip().splitlines()[-1])  # noqa: S307 (our own dict's repr)
    assert got["paddle"] == 3.0
    assert "ids" in got or got["error"] == (  # which thread wins varies; never AttributeError
        "PaddleMissingError: Paddle is being imported in another thread at this moment (Python "
        "handed over the half-imported module): import paddle before starting the threads.")


@pytest.mark.parametrize("value", ["full", "FULL", " full\n"])
def test_paddle_import_full_is_read_as_a_shell_user_may_write_it(value):
    code = "from ppinfer.runtime.paddle_core import paddle_core; print(paddle_core().whole)"
    run = _python(code, PPINFER_PADDLE_IMPORT=value)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"


def test_an_unknown_paddle_import_setting_is_one_sentence(home):
    run = subprocess.run([sys.executable, "-m", "ppinfer", "predict"], capture_output=True,
                         text=True, timeout=600,
                         env=dict(os.environ, PPINFER_HOME=home, PPINFER_PADDLE_IMPORT="fast"))
    assert run.returncode == 2
    assert run.stderr == "Error: PPINFER_PADDLE_IMPORT='fast' is not one of auto, full.\n"


def test_paddles_own_import_warnings_stay_off_stderr(home, tmp_path):
    # import paddle prints "WARNING: OMP_NUM_THREADS set to 2, not 1 ..." when it is not 1.
    run = _python(PREDICT, PPINFER_HOME=home, OMP_NUM_THREADS="2", PPINFER_PADDLE_IMPORT="full")
    assert run.returncode == 0 and run.stderr == "", run.stderr
