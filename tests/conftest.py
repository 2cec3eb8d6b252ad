"""Shared fixtures: real photos (scikit-image's samples) and small real Paddle checkpoints."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

# Keep the built-in model's export cache out of the user's home during tests.
os.environ.setdefault("PPINFER_HOME", str(Path(__file__).parent / ".ppinfer-home"))
# Tests name the engine they test; without one, predict would measure the installed engines
# once per model (--engine auto, the users' default). tests/test_default_engine.py and the
# README's blocks run without this.
os.environ.setdefault("PPINFER_ENGINE", "analysis")
# A test run started in the background by a non-interactive shell (`pytest &`) has SIGINT
# ignored, and every ppinfer process the tests start would inherit that (an ignored signal
# stays ignored across exec, and Python then installs no KeyboardInterrupt): the Ctrl-C tests
# need it delivered.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
_SESSION = pytest.StashKey[pytest.Session]()


def _paddle_major() -> int | None:
    from ppinfer.runtime.paddle_env import package_version

    for distribution in ("paddlepaddle", "paddlepaddle-gpu"):
        version = package_version(distribution)
        if version:
            return int(version.split(".")[0])
    return None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "paddle3_only: behaviour that does not depend on Paddle's version, run on "
        "Paddle 3 only so that the suite on both Paddle versions fits CI's time: Ray's and Ray "
        "Serve's plumbing (each Ray runner keeps one end-to-end test on every Paddle), the HTTP "
        "server in-process (`ppinfer serve` as a process still runs on both), output for "
        "people, signals and pipes, files ppinfer writes for itself, the image pipeline, "
        "checkpoint readers that never call Paddle. Whatever reaches Paddle (export, engines, "
        "precisions, threads, quantization, the model zoo, native exits, the docs' blocks) "
        "runs on both")


def pytest_collection_modifyitems(config, items):
    major = _paddle_major()
    if major is None or major >= 3:
        return
    skip = pytest.mark.skip(reason="independent of Paddle's version (tests/conftest.py): "
                                   "tested on Paddle 3")
    for item in items:
        if item.get_closest_marker("paddle3_only"):
            item.add_marker(skip)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    session.config.stash[_SESSION] = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """End the test process with pytest's own status once everything is reported, without
    the interpreter's teardown. This one process holds Paddle, OpenVINO, ONNX Runtime, Ray,
    gevent and a browser driver at once (no ppinfer process ever does), and their native
    destructors ran in whatever order module teardown reached them: once in CI, after all
    1255 tests had passed, that ended in a segmentation fault (exit 139). How ppinfer's own
    processes end is tested in processes of their own (tests/test_native_exit.py,
    tests/test_interrupts.py); threads a test leaves running are its own failure
    (tests/test_serve.py)."""
    session = config.stash.get(_SESSION, None)
    if session is None or os.environ.get("PPINFER_TEST_FULL_TEARDOWN"):
        return  # no session ran, or the interpreter's own exit was asked for
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(int(session.exitstatus))


CLASS_NUM = 10  # small classifier: fast, and top-5 still means something


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> dict[str, Path]:
    """chelsea (a cat) and coffee as JPEGs, astronaut as PNG."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    out = {}
    for name, ext in (("chelsea", ".jpg"), ("coffee", ".jpg"), ("astronaut", ".png")):
        path = root / f"{name}{ext}"
        cv2.imwrite(str(path), cv2.cvtColor(getattr(data, name)(), cv2.COLOR_RGB2BGR))
        out[name] = path
    return out


@pytest.fixture(scope="session")
def lite0() -> Path:
    """The built-in EfficientNet-Lite0's model directory (real weights)."""
    from ppinfer.api.builtin_model import default_model_dir

    return default_model_dir()


@pytest.fixture(scope="session")
def views(tmp_path_factory) -> Path:
    """Calibration views of photos (tests/quantized_lite0.py)."""
    from .quantized_lite0 import write_views

    return write_views(tmp_path_factory.mktemp("calib"))


@pytest.fixture(scope="session")
def quantized(lite0, views, tmp_path_factory):
    """``quantized(engine)``: Lite0 quantized for ``engine`` once a session (the CliRunner
    result, the output directory)."""
    from .quantized_lite0 import Quantized

    return Quantized(lite0, views, tmp_path_factory.mktemp("int8"))


@pytest.fixture(scope="session")
def paddleclas_root() -> Path:
    """The unpacked PaddleClas 2.6.0 wheel (tests/paddleclas_reference.py): skips without it."""
    from .paddleclas_reference import require_paddleclas

    return require_paddleclas()


def randomize_batch_norm_stats(static_model, seed: int = 0) -> None:
    """Give BN running statistics non-trivial values so a wrong load shows in the scores."""
    rng = np.random.default_rng(seed)
    for name, shape in static_model.expected.items():
        tensor = static_model.scope.find_var(name).get_tensor()
        if name.endswith("_mean"):
            tensor.set(rng.normal(0, 0.1, shape).astype(np.float32), _place())
        elif name.endswith("_variance"):
            tensor.set(rng.uniform(0.5, 1.5, shape).astype(np.float32), _place())


def _place():
    import paddle

    return paddle.CPUPlace()


def save_persistable(static_model, directory: Path) -> Path:
    """One file per variable, with Paddle's own legacy saving API (the seed's layout)."""
    import paddle

    names = set(static_model.expected)
    with static_model.guard():
        paddle.static.io.save_vars(
            static_model.executor, str(directory), static_model.program,
            predicate=lambda var: var.name in names,
        )
    return directory


@pytest.fixture(scope="session")
def resnet50_vd_checkpoint(tmp_path_factory) -> Path:
    """A ResNet50_vd persistable checkpoint (10 classes, random weights, real BN stats)."""
    import paddle

    from ppinfer.models import get_model
    from ppinfer.models.program import build_static_model

    paddle.seed(0)
    model = build_static_model(get_model("ResNet50_vd"), CLASS_NUM, ir="legacy")
    randomize_batch_norm_stats(model)
    spread_scores(model)
    return save_persistable(model, tmp_path_factory.mktemp("ckpt") / "ResNet50_vd_persistable")


def spread_scores(static_model, image=None) -> None:
    """Shrink the classifier until a real photo's softmax is not saturated.

    Random deep networks give huge logits, so softmax rounds to one 1.0 and many ties; scores
    that differ make the top-5 comparison mean something.
    """
    from skimage import data

    from ppinfer.pipeline.preprocess import preprocess_image

    batch = preprocess_image(data.chelsea() if image is None else image,
                             static_model.spec.preprocess)[None]
    weights = static_model.scope.find_var("fc_0.w_0").get_tensor()
    for _ in range(12):
        if static_model.run(batch).max() < 0.6:
            return
        weights.set(np.asarray(weights) * np.float32(0.2), _place())
    raise AssertionError("could not bring the random classifier's scores into range")


def built(name: str, class_num: int = 3):
    """A registered architecture in dygraph, in eval mode."""
    from ppinfer.models import get_model

    net = get_model(name).build(class_num=class_num)
    net.eval()
    return net


def variable_shapes(net) -> dict[str, list[int]]:
    """Variable name (what a PaddleClas checkpoint file is called) -> shape."""
    return {v.name: list(v.shape) for v in net.state_dict().values()}


def se_gate(se, pre_gate: np.ndarray) -> np.ndarray:
    """A squeeze-excite block's gate for each channel's pre-activation ``pre_gate``: with zero
    weights the second conv's bias alone reaches the gate, and a ones input shows the gate."""
    import paddle

    for conv in (se.conv1, se.conv2):
        conv.weight.set_value(np.zeros(conv.weight.shape, dtype="float32"))
        conv.bias.set_value(np.zeros(conv.bias.shape, dtype="float32"))
    se.conv2.bias.set_value(pre_gate)
    return se(paddle.ones([1, len(pre_gate), 2, 2])).numpy()[0, :, 0, 0]
