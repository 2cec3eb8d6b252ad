"""PaddleClas's own model code as the reference: the ``paddleclas`` wheel from the package registry.

Fetching: ``pip download --no-deps paddleclas==2.6.0`` once into ``tests/.cache`` (kept across
sessions, so a machine that has it needs no network) and unpacked there.

- ``PPINFER_TEST_PADDLECLAS``: an unpacked wheel (a directory holding ``paddleclas/ppcls``) to use
  instead of downloading;
- ``PPINFER_TEST_CACHE``: where to download and unpack instead of ``tests/.cache``;
- ``PPINFER_TEST_REQUIRE_PADDLECLAS=1`` (set by ``.ci/run``): fail instead of skipping when the
  registry cannot be reached.

Importing: the wheel's ``ppcls/arch/backbone/legendary_models/*.py`` import with Paddle alone when
ppcls's package ``__init__`` chain (the whole training stack) is not run. The packages they import
relatively are created as bare packages over the wheel's directories, under a private name (so
nothing clashes with an installed ``ppcls``). ``ppcls.utils.save_load`` is the one module replaced:
it only downloads pretrained weights (and needs requests/tqdm); here it refuses to.

Reference building: the model gets random weights, batch-norm statistics calibrated on real photos
(and, when the random network still gives every photo the same top-1, a few training steps to
tell them apart), and a classifier scaled so its softmax is neither flat nor saturated;
``paddle.save(state_dict())`` writes the file a user has. Comparison: ``ppinfer export`` +
``ppinfer predict`` must give PaddleClas's top-5, scores within ``SCORE_ATOL``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

PADDLECLAS_VERSION = "2.6.0"
PACKAGE = "_paddleclas_reference"  # the wheel's ppcls/, imported under this name
_PACKAGES = ("", "arch", "arch.backbone", "arch.backbone.base",
             "arch.backbone.legendary_models", "arch.backbone.model_zoo", "utils")
SCORE_ATOL = 1e-5
TRAIN_STEPS = 60


class ReferenceUnavailable(RuntimeError):
    """The wheel could not be fetched (no registry); the reason says why."""


# -- fetching -------------------------------------------------------------------------------------

def _cache_dir() -> Path:
    return Path(os.environ.get("PPINFER_TEST_CACHE") or Path(__file__).parent / ".cache")


def fetch_paddleclas() -> Path:
    """The unpacked ``paddleclas`` wheel's root (holding ``paddleclas/ppcls``), fetched once."""
    given = os.environ.get("PPINFER_TEST_PADDLECLAS")
    if given:
        return Path(given)
    root = _cache_dir() / f"paddleclas-{PADDLECLAS_VERSION}"
    if (root / "paddleclas" / "ppcls").is_dir():
        return root
    download = _cache_dir() / "wheels"
    download.mkdir(parents=True, exist_ok=True)
    requirement = f"paddleclas=={PADDLECLAS_VERSION}"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", str(download), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReferenceUnavailable(f"could not run pip download {requirement}: {exc}") from None
    wheels = sorted(download.glob(f"paddleclas-{PADDLECLAS_VERSION}-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReferenceUnavailable(f"pip download {requirement} failed: {last}")
    partial = root.with_name(root.name + ".partial")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(partial)
    partial.rename(root)  # atomic: a half-unpacked wheel is never taken for a whole one
    return root


def require_paddleclas() -> Path:
    """:func:`fetch_paddleclas` for a fixture: skips the test when the registry cannot be reached,
    fails it instead under ``PPINFER_TEST_REQUIRE_PADDLECLAS=1``."""
    try:
        return fetch_paddleclas()
    except ReferenceUnavailable as exc:
        if os.environ.get("PPINFER_TEST_REQUIRE_PADDLECLAS") == "1":
            pytest.fail(f"the PaddleClas reference is required here: {exc}")
        pytest.skip(f"the PaddleClas reference wheel is unavailable ({exc})")


# -- importing ------------------------------------------------------------------------------------

def _install_packages(ppcls: Path) -> None:
    for dotted in _PACKAGES:
        name = f"{PACKAGE}.{dotted}" if dotted else PACKAGE
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(ppcls.joinpath(*dotted.split(".")) if dotted else ppcls)]
            sys.modules[name] = package
    save_load = types.ModuleType(f"{PACKAGE}.utils.save_load")

    def load_dygraph_pretrain(*_args, **_kwargs):
        raise RuntimeError("the PaddleClas reference never loads pretrained weights")

    save_load.load_dygraph_pretrain = load_dygraph_pretrain
    sys.modules.setdefault(save_load.__name__, save_load)
    logger = importlib.import_module(f"{PACKAGE}.utils.logger")
    if logger._logger is None:  # as PaddleClas's own entry points do before building a model
        logger.init_logger()


def import_legendary(root: Path, module: str) -> types.ModuleType:
    """``ppcls.arch.backbone.legendary_models.<module>`` from the unpacked wheel at ``root``
    (``model_zoo.<module>``: that one, from ``arch/backbone/model_zoo``)."""
    _install_packages(root / "paddleclas" / "ppcls")
    where = module if module.startswith("model_zoo.") else f"legendary_models.{module}"
    return importlib.import_module(f"{PACKAGE}.arch.backbone.{where}")


def legendary_model(root: Path, module: str, factory: str, **kwargs):
    """PaddleClas's ``legendary_models/<module>.py`` ``factory(**kwargs)``: its own nn.Layer.
    ``module`` may also name a model-zoo file: ``model_zoo.<module>``."""
    if module.startswith("model_zoo."):
        _install_packages(root / "paddleclas" / "ppcls")
        found = importlib.import_module(f"{PACKAGE}.arch.backbone.{module}")
    else:
        found = import_legendary(root, module)
    return getattr(found, factory)(pretrained=False, **kwargs)


def classifier(model):
    """The final Linear of a PaddleClas model: ``fc``, ``head.fc_head`` (foundation ViTs),
    ``classifier`` (MobileNetV4) or ``head`` (Swin, ConvNeXt)."""
    head = getattr(model, "fc", None) or getattr(model, "classifier", None) or model.head
    return getattr(head, "fc_head", head)


# -- building a reference -------------------------------------------------------------------------

CALIBRATION_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
                      "retina", "hubble_deep_field", "colorwheel")


def calibration_images() -> list[np.ndarray]:
    """scikit-image's colour photos and their mirror images (RGB arrays). Varied photos keep
    the calibrated variances sane: statistics of two or three photos leave channels with tiny
    variances that amplify rounding (folding batch norm into convs then costs ~1e-5)."""
    from skimage import data

    photos = [getattr(data, name)() for name in CALIBRATION_PHOTOS]
    return photos + [photo[:, ::-1].copy() for photo in photos]


def calibrate_batch_norm(model, x) -> None:
    """One train-mode pass over the batch ``x`` (a tensor) with momentum 0, without gradients: every
    BN's running statistics become the batch's own (random weights with statistics 0/1 give
    scores that barely depend on the input)."""
    import paddle

    kinds = (paddle.nn.BatchNorm, paddle.nn.BatchNorm2D)  # legacy and 2.x batch norm
    norms = [layer for layer in model.sublayers() if isinstance(layer, kinds)]
    momenta = [layer._momentum for layer in norms]
    for layer in norms:
        layer._momentum = 0.0
    model.train()
    with paddle.no_grad():
        model(x)
    model.eval()
    for layer, momentum in zip(norms, momenta):
        layer._momentum = momentum


def softmax_scores(model, x) -> np.ndarray:
    import paddle

    with paddle.no_grad():
        return paddle.nn.functional.softmax(model(x), axis=-1).numpy()


def tells_apart(model, x) -> bool:
    """Each photo of ``x`` has its own top-1 (with fewer classes than photos: every class is
    some photo's top-1)."""
    scores = softmax_scores(model, x)
    return len(set(scores.argmax(axis=1).tolist())) == min(x.shape[0], scores.shape[1])


def teach_photos_apart(model, x) -> None:
    """A few training steps (photo i -> class i) until each photo has its own top-1.

    A deep random network maps every photo to nearly the same pooled features (a random
    MobileNetV3's differ by about 0.1%) and gives all three the same top-1, which would leave a
    1e-5 comparison nearly blind to the input.
    """
    import paddle

    with paddle.no_grad():
        classes = model(x).shape[1]
    labels = paddle.arange(x.shape[0]) % classes
    optimizer = paddle.optimizer.Adam(learning_rate=3e-3, parameters=model.parameters())
    for step in range(TRAIN_STEPS):
        model.train()
        loss = paddle.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        model.eval()
        if step % 3 == 2 and tells_apart(model, x):
            return


def fit_classifier(model, fc, x, seed: int = 0) -> None:
    """Set the classifier ``fc`` by least squares on the model's own pooled features
    (``forward_features``, else the classifier's input) so photo i's top-1 is class i, the
    other scores random. Deep random transformers (and PP-HGNet) give photos different features
    but one top-1, and training them on CPU to tell them apart takes minutes; the features
    themselves still come from the random network."""
    import paddle

    with paddle.no_grad():
        if hasattr(model, "forward_features"):
            features = model.forward_features(x).numpy().astype(np.float64)
        else:  # what reaches the classifier, caught on its way in
            seen = []
            hook = fc.register_forward_pre_hook(lambda _layer, args: seen.append(args[0]))
            model(x)
            hook.remove()
            features = seen[0].numpy().astype(np.float64)
    photos, classes = features.shape[0], fc.weight.shape[1]
    target = np.random.default_rng(seed).normal(0.0, 1.0, (photos, classes))
    target[np.arange(photos), np.arange(photos)] += 4.0
    for _ in range(40):  # a temperature putting every top-1 score between 0.3 and 0.6
        top = _softmax(target).max(axis=1)
        if top.min() >= 0.3 and top.max() <= 0.6:
            break
        target *= 1.3 if top.min() < 0.3 else 0.8
    solution = np.linalg.lstsq(np.hstack([features, np.ones((photos, 1))]), target,
                               rcond=None)[0]
    fc.weight.set_value(solution[:-1].astype(np.float32))
    fc.bias.set_value(solution[-1].astype(np.float32))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def aim_classifier(model, fc, x, seed: int = 0) -> None:
    """Set the linear classifier ``fc`` so photo i of the batch ``x`` has class i on top: class
    i's weights point along photo i's features (``fc``'s input) minus the batch's mean (its bias
    removes the mean), plus random weights that order the other classes, well apart yet below.
    Like :func:`fit_classifier` for models without ``forward_features`` giving ``fc``'s input;
    the scores still depend on every layer before ``fc``."""
    import paddle

    captured = []
    hook = fc.register_forward_pre_hook(lambda _layer, inputs: captured.append(inputs[0]))
    with paddle.no_grad():
        model(x)
    hook.remove()
    features = captured[0].numpy().reshape(x.shape[0], -1).astype(np.float64)
    mean = features.mean(axis=0)
    centered = features - mean
    margin = np.linalg.norm(centered, axis=1).min()  # photo i's class-i logit is at least this
    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 1.0, fc.weight.shape)
    weight *= 0.25 * margin / (centered @ weight).std()  # the others' order: random, below it
    bias = -mean @ weight
    for i, row in enumerate(centered):
        direction = row / np.linalg.norm(row)
        weight[:, i] += direction
        bias[i] -= mean @ direction
    fc.weight.set_value(paddle.to_tensor(weight, "float32"))
    fc.bias.set_value(paddle.to_tensor(bias, "float32"))


def spread_classifier(model, fc, x, low: float = 0.2, high: float = 0.95) -> np.ndarray:
    """Scale the classifier ``fc`` (weight and bias: a softmax temperature) until every photo's
    top-1 is at least ``low`` and none reaches ``high``: neither near-uniform scores (that differ
    by less than the tolerance) nor a saturated softmax (one 1.0, ties at 0). Returns the scores."""
    for _ in range(40):
        scores = softmax_scores(model, x)
        top = scores.max(axis=1).min()
        if top >= low and scores.max() < high:
            return scores
        factor = np.float32(1.5 if top < low else 0.7)
        fc.weight.set_value(fc.weight.numpy() * factor)
        fc.bias.set_value(fc.bias.numpy() * factor)
    raise AssertionError(f"could not spread the random classifier's scores (top-1 {top:.3f})")


def photo_batch(name: str, images: list, preprocess=None) -> np.ndarray:
    """``images`` (paths or RGB arrays) preprocessed as ppinfer's ``name`` does (or as
    ``preprocess``, a PreprocessConfig, says), one NCHW batch."""
    from ppinfer.models import get_model
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import make_batch, preprocess_image

    cfg = preprocess or get_model(name).preprocess
    return make_batch([preprocess_image(image if isinstance(image, np.ndarray)
                                        else load_image(image), cfg) for image in images])


@dataclass
class Reference:
    module: str  # PaddleClas's legendary_models module
    name: str  # PaddleClas's factory, ppinfer's registered name
    state: dict[str, np.ndarray]  # PaddleClas's state_dict, as arrays
    pdparams: Path  # paddle.save(model.state_dict())
    scores: np.ndarray  # [photo, class]: PaddleClas's forward + softmax
    photos: list[Path]


def build_reference(root: Path, module: str, name: str, photos: list[Path], out: Path, *,
                    class_num: int, calibration: np.ndarray | None = None,
                    high: float = 0.95, low: float = 0.2, ranked: int = 5,
                    arguments: dict | None = None, preprocess=None, prefix: str = "",
                    beside: dict | None = None, fit_head: bool = False,
                    head: str | None = None, prepare=None) -> Reference:
    """PaddleClas's own ``name(**arguments)`` with random weights, BN statistics from
    ``calibration`` (a preprocessed batch; default ``photos`` themselves), a few training steps
    if the random network cannot tell ``photos`` apart (with ``fit_head``,
    :func:`fit_classifier` instead), and a classifier spread below ``high``; saved to ``out``,
    each key under ``prefix`` (a distillation part: ``"Student."``) and ``beside`` saved with
    it (the other parts' state). ``photos`` are preprocessed as ``preprocess`` says (default:
    ppinfer's for ``name``). ``prepare(model, x)``, if given, runs after the BN calibration
    (e.g. layer scales that start near 0, then :func:`aim_classifier`). Asserts the scores make
    the top-5 comparison mean something (the first ``ranked`` places apart, and the photos'
    top-1s). ``head``: the attribute holding the model's last Linear where
    :func:`classifier` does not find it (MobileNetV2's ``out``)."""
    import paddle

    paddle.disable_static()
    paddle.seed(7)
    model = legendary_model(root, module, name, class_num=class_num, **(arguments or {}))
    x = paddle.to_tensor(photo_batch(name, photos, preprocess))
    calibrate_on = x if calibration is None else paddle.to_tensor(calibration)
    calibrate_batch_norm(model, calibrate_on)
    if prepare is not None:
        prepare(model, x)
    last = getattr(model, head) if head else classifier(model)
    if fit_head:
        fit_classifier(model, last, x)
    elif not tells_apart(model, x):
        teach_photos_apart(model, x)
        calibrate_batch_norm(model, calibrate_on)
    scores = spread_classifier(model, last, x, low=low, high=high)
    order = np.sort(scores, axis=1)[:, ::-1]
    ranked = min(ranked, order.shape[1] - 1)  # the top-5's order, or all of two classes'
    gaps = order[:, :ranked] - order[:, 1:ranked + 1]
    assert gaps.min() > 2 * SCORE_ATOL, "near-ties in the top-k would make the order check luck"
    top1 = {int(row.argmax()) for row in scores}
    assert len(top1) == min(len(photos), class_num), "scores ignore the input"
    state = {key: value.numpy() for key, value in model.state_dict().items()}
    saved = {prefix + key: value for key, value in model.state_dict().items()}
    paddle.save({**(beside or {}), **saved}, str(out))  # parts in the config's order
    return Reference(module, name, state, out, scores, list(photos))


# -- comparing ------------------------------------------------------------------------------------

def run_cli(args: list[str], exit_code: int = 0) -> str:
    from click.testing import CliRunner

    from ppinfer.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == exit_code, result.output
    return result.output


def export(name: str, params: Path, out: Path, class_num: int) -> Path:
    run_cli(["export", "-m", name, "-p", str(params), "-o", str(out),
             "--class-num", str(class_num)])
    return out


def predicted(args: list[str]) -> list[dict]:
    """``ppinfer predict --json`` + ``args``: its per-image lines."""
    output = run_cli(["predict", "--json", *args])
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def image_args(ref: Reference) -> list[str]:
    return [arg for path in ref.photos for arg in ("-i", str(path))]


def assert_agrees(lines: list[dict], ref: Reference, atol: float = SCORE_ATOL) -> None:
    """One line per photo, in order; each photo's top-5 is PaddleClas's, its scores within
    ``atol`` of PaddleClas's."""
    assert [line["file_name"] for line in lines] == [str(path) for path in ref.photos]
    for line, scores in zip(lines, ref.scores):
        order = np.argsort(-scores, kind="stable")[:len(line["class_ids"])]
        assert len(order) == min(5, len(scores)), line["file_name"]
        assert line["class_ids"] == order.tolist(), line["file_name"]
        np.testing.assert_allclose(line["scores"], scores[order], rtol=0, atol=atol)
