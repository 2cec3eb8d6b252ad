"""PaddleClas 2.6's own model code, from the wheel on the package index, as a test reference.

``pip download --no-deps paddleclas==2.6.0`` once into a cache directory (reused by later
sessions, so a machine that has it needs no network), unpacked there. Its model files
(``ppcls/arch/backbone/legendary_models/*.py``) import with Paddle alone when ppcls's package
``__init__`` chain is not run: the packages they import relatively are created here as bare
namespaces over the wheel's directories, under a private name (so nothing clashes with an
installed ``ppcls``). ``ppcls.utils.save_load`` is the one module replaced: it only downloads
pretrained weights (and needs requests/tqdm); here it refuses to.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

REQUIREMENT = "paddleclas==2.6.0"
WHEEL = "paddleclas-2.6.0-py3-none-any.whl"
PACKAGE = "_paddleclas_ref_b"  # the wheel's ppcls/, imported under this name
_PACKAGES = ("", "arch", "arch.backbone", "arch.backbone.base",
             "arch.backbone.legendary_models", "utils")


def cache_dir() -> Path:
    """The wheel's directory across sessions: $PPINFER_TEST_CACHE, else ~/.cache/ppinfer-tests."""
    base = os.environ.get("PPINFER_TEST_CACHE") or (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ppinfer-tests")
    return Path(base)


_unreachable: list[str] = []  # why the download failed, so later tests skip without retrying


def wheel_path() -> Path:
    """The wheel, downloaded once; skips the test when the package index cannot be reached."""
    directory = cache_dir()
    wheel = directory / WHEEL
    if wheel.is_file():
        return wheel
    if _unreachable:
        pytest.skip(_unreachable[0])
    directory.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--disable-pip-version-check", "-q", REQUIREMENT, "-d", str(directory)],
            capture_output=True, text=True, timeout=300, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unreachable.append(f"could not run pip download {REQUIREMENT}: {exc}")
        pytest.skip(_unreachable[0])
    if done.returncode != 0 or not wheel.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        _unreachable.append(f"the package index did not give {REQUIREMENT} (pip: {last})")
        pytest.skip(_unreachable[0])
    return wheel


def ppcls_dir() -> Path:
    """The wheel's ``paddleclas/ppcls`` directory, unpacked next to the wheel once."""
    wheel = wheel_path()
    root = wheel.parent / "paddleclas-2.6.0"
    marker = root / ".unpacked"
    if not marker.exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(root)
        marker.touch()
    return root / "paddleclas" / "ppcls"


def _install_namespaces(ppcls: Path) -> None:
    for dotted in _PACKAGES:
        name = f"{PACKAGE}.{dotted}" if dotted else PACKAGE
        if name in sys.modules:
            continue
        module = types.ModuleType(name)
        module.__path__ = [str(ppcls.joinpath(*dotted.split(".")) if dotted else ppcls)]
        sys.modules[name] = module
    save_load = types.ModuleType(f"{PACKAGE}.utils.save_load")

    def load_dygraph_pretrain(*_args, **_kwargs):
        raise RuntimeError("the PaddleClas reference never downloads pretrained weights")

    save_load.load_dygraph_pretrain = load_dygraph_pretrain
    sys.modules.setdefault(save_load.__name__, save_load)


def legendary_model(module: str, factory: str, **kwargs):
    """PaddleClas's ``legendary_models/<module>.py`` ``factory(**kwargs)``: its own nn.Layer."""
    _install_namespaces(ppcls_dir())
    models = importlib.import_module(f"{PACKAGE}.arch.backbone.legendary_models.{module}")
    return getattr(models, factory)(pretrained=False, **kwargs)


CALIBRATION_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                      "retina", "hubble_deep_field", "colorwheel")


def calibration_images() -> list:
    """scikit-image's colour photos and their mirror images (RGB arrays). Varied photos keep
    the calibrated variances sane: statistics of two or three photos leave channels with tiny
    variances that amplify rounding (folding batch norm into convs then costs ~1e-5)."""
    from skimage import data

    photos = [getattr(data, name)() for name in CALIBRATION_PHOTOS]
    return photos + [photo[:, ::-1].copy() for photo in photos]


def calibrate_batch_norm(model, batch, passes: int = 2) -> None:
    """Train-mode forward passes over real photos with momentum 0, so every BN's running
    statistics are the photos' own (random weights with statistics 0/1 give scores that barely
    depend on the input)."""
    import paddle

    norms = [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D)]
    momenta = [layer._momentum for layer in norms]
    for layer in norms:
        layer._momentum = 0.0
    model.train()
    with paddle.no_grad():
        for _ in range(passes):
            model(paddle.to_tensor(batch))
    model.eval()
    for layer, momentum in zip(norms, momenta):
        layer._momentum = momentum


def spread_classifier(model, batch, fc, low: float = 0.3, high: float = 0.7) -> None:
    """Scale the classifier ``fc`` until the batch's highest score is in [low, high]: neither
    near-uniform scores (that differ by less than the tolerance) nor a saturated softmax (one
    1.0, ties at 0), so the top-5 comparison means something."""
    import numpy as np

    for _ in range(40):
        top = float(softmax_scores(model, batch).max())
        if low <= top <= high:
            return
        factor = np.float32(1.5 if top < low else 0.6)
        fc.weight.set_value(fc.weight.numpy() * factor)
        fc.bias.set_value(fc.bias.numpy() * factor)
    raise AssertionError("could not bring the random classifier's scores into range")


def softmax_scores(model, batch):
    import paddle

    with paddle.no_grad():
        logits = model(paddle.to_tensor(batch))
    return paddle.nn.functional.softmax(logits, axis=-1).numpy()
