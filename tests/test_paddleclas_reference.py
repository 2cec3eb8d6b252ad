"""State dicts saved by PaddleClas's own code export and predict as PaddleClas's forward does.

The reference is the ``paddleclas==2.6.0`` wheel's ``legendary_models`` (see
paddleclas_reference.py): its model is built with random weights, trained a few steps to tell
three real photos apart (so the scores depend on the input) and its batch-norm statistics
calibrated on them, ``paddle.save(state_dict())``
writes the file a user has, and ``ppinfer export`` + ``ppinfer predict`` must give PaddleClas's
top-5 with scores within 1e-5. The smallest member of each family keeps it fast.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.models import get_model
from ppinfer.pipeline.decode import load_image
from ppinfer.pipeline.preprocess import make_batch, preprocess_image

from .conftest import CLASS_NUM
from .paddleclas_reference import ReferenceUnavailable, fetch_paddleclas, import_legendary

# registered name -> PaddleClas legendary module holding the same-named factory
MODELS = {
    "ResNet18": "resnet",
    "ResNet18_vd": "resnet",
    "MobileNetV3_small_x0_35": "mobilenet_v3",
    "MobileNetV3_large_x0_35": "mobilenet_v3",
}
CALIBRATION_PASSES = 20
TRAIN_STEPS = 60
SCORE_ATOL = 1e-5


@dataclass
class Reference:
    name: str
    state: dict[str, np.ndarray]  # PaddleClas's state_dict, as arrays
    pdparams: Path  # paddle.save(model.state_dict())
    scores: np.ndarray  # [photo, class]: PaddleClas's forward + softmax
    photos: list[Path]


@pytest.fixture(scope="session")
def paddleclas_root() -> Path:
    try:
        return fetch_paddleclas()
    except ReferenceUnavailable as exc:
        if os.environ.get("PPINFER_TEST_REQUIRE_PADDLECLAS") == "1":
            pytest.fail(f"the PaddleClas reference is required here: {exc}")
        pytest.skip(f"the PaddleClas reference wheel is unavailable ({exc})")


def _photo_batch(name: str, photos: list[Path]) -> np.ndarray:
    cfg = get_model(name).preprocess
    return make_batch([preprocess_image(load_image(p), cfg) for p in photos])


def _spread_classifier(net, fc, batch) -> np.ndarray:
    """Scale the classifier until no photo's scores are saturated (top-1 under 0.95) or flat
    (top-1 at least 0.2)."""
    import paddle

    for _ in range(40):
        scores = paddle.nn.functional.softmax(net(paddle.to_tensor(batch)), axis=-1).numpy()
        top = scores.max(axis=1).min()
        if top >= 0.2 and scores.max() < 0.95:
            return scores
        factor = 1.5 if top < 0.2 else 0.7
        fc.weight.set_value(fc.weight.numpy() * np.float32(factor))
    raise AssertionError(f"could not spread the random classifier's scores (top-1 {top:.3f})")


def _teach_photos_apart(net, batch: np.ndarray) -> None:
    """A few training steps (photo i -> class i) so the scores depend on the input.

    A deep random network maps every photo to nearly the same pooled features (MobileNetV3's
    differ by about 0.1%), which would leave a 1e-5 comparison nearly blind to the input. The
    steps run in train mode, so the batch-norm statistics are calibrated on the photos too.
    """
    import paddle

    x, labels = paddle.to_tensor(batch), paddle.arange(len(batch))
    optimizer = paddle.optimizer.Adam(learning_rate=3e-3, parameters=net.parameters())
    for step in range(TRAIN_STEPS):
        net.train()
        loss = paddle.nn.functional.cross_entropy(net(x), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        if step % 3 == 2:
            net.eval()
            with paddle.no_grad():
                if (net(x).numpy().argmax(axis=1) == labels.numpy()).all():
                    break
    net.train()
    with paddle.no_grad():
        for _ in range(CALIBRATION_PASSES):  # running mean/variance settle on the photos
            net(x)
    net.eval()


def build_reference(root: Path, name: str, photos: list[Path], out: Path) -> Reference:
    """PaddleClas's own ``name``, random weights taught to tell ``photos`` apart."""
    import paddle

    paddle.disable_static()
    paddle.seed(7)
    net = getattr(import_legendary(root, MODELS[name]), name)(class_num=CLASS_NUM)
    batch = _photo_batch(name, photos)
    _teach_photos_apart(net, batch)
    with paddle.no_grad():
        scores = _spread_classifier(net, net.fc, batch)
    order = np.sort(scores, axis=1)[:, ::-1]
    gaps = order[:, :5] - order[:, 1:6]
    assert gaps.min() > 2 * SCORE_ATOL, "near-ties in the top-5 would make the order check luck"
    assert len({int(row.argmax()) for row in scores}) == len(photos), "scores ignore the input"
    state = {key: value.numpy() for key, value in net.state_dict().items()}
    paddle.save(net.state_dict(), str(out))
    return Reference(name, state, out, scores, photos)


@pytest.fixture(scope="module", params=list(MODELS))
def reference(request, paddleclas_root, photos, tmp_path_factory) -> Reference:
    out = tmp_path_factory.mktemp("paddleclas") / f"{request.param}_pretrained.pdparams"
    return build_reference(paddleclas_root, request.param, list(photos.values()), out)


def predicted(args: list[str]) -> list[dict]:
    result = CliRunner().invoke(cli, ["predict", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def assert_agrees(lines: list[dict], ref: Reference) -> None:
    """Each photo's top-5 is PaddleClas's, its scores within SCORE_ATOL of PaddleClas's."""
    assert [line["file_name"] for line in lines] == [str(p) for p in ref.photos]
    for line, scores in zip(lines, ref.scores):
        order = np.argsort(-scores, kind="stable")[:5]
        assert line["class_ids"] == order.tolist()
        np.testing.assert_allclose(line["scores"], scores[order], rtol=0, atol=SCORE_ATOL)


def export(ref: Reference, params: Path, out: Path) -> Path:
    result = CliRunner().invoke(cli, ["export", "-m", ref.name, "-p", str(params), "-o", str(out),
                                      "--class-num", str(CLASS_NUM)])
    assert result.exit_code == 0, result.output
    return out


def test_paddleclas_state_dict_exports_and_predicts_as_paddleclas(reference, tmp_path):
    out = export(reference, reference.pdparams, tmp_path / "out")
    images = [arg for p in reference.photos for arg in ("-i", str(p))]
    assert_agrees(predicted([*images, "--model", str(out)]), reference)


def test_executor_persistable_predicts_from_a_paddleclas_state_dict(reference):
    if reference.name != "MobileNetV3_small_x0_35":
        pytest.skip("one family member is enough for the executor-persistable path")
    images = [arg for p in reference.photos for arg in ("-i", str(p))]
    lines = predicted([*images, "--engine", "executor-persistable", "--model-name",
                       reference.name, "--class-num", str(CLASS_NUM),
                       "-p", str(reference.pdparams)])
    assert_agrees(lines, reference)
