"""PP-LCNet and PP-HGNetV2 against PaddleClas 2.6's own code (the wheel from the package index):
its model, with random weights and batch-norm statistics calibrated on real photos, saves a
state dict; ppinfer exports and predicts it; top-5 equal and scores within 1e-5 of PaddleClas's
own forward + softmax. Also: every registered size has PaddleClas's keys, shapes and counts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.modelcard import read_card
from ppinfer.models import get_model
from ppinfer.pipeline.decode import load_image
from ppinfer.pipeline.preprocess import preprocess_image
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from . import paddleclas_ref_b as ref
from .conftest import CLASS_NUM
from .test_models_pp_hgnetv2 import EXACT as HGNETV2_COUNTS
from .test_models_pp_lcnet import EXACT as LCNET_COUNTS

# (PaddleClas module, PaddleClas factory = ppinfer name, PaddleX alias): each family's smallest.
SMALLEST = [("pp_lcnet", "PPLCNet_x0_25", "PP-LCNet_x0_25"),
            ("pp_hgnet_v2", "PPHGNetV2_B0", "PP-HGNetV2-B0")]
EVERY_SIZE = ([("pp_lcnet", name) for name in LCNET_COUNTS]
              + [("pp_hgnet_v2", name) for name in HGNETV2_COUNTS])
COUNTS = {**LCNET_COUNTS, **HGNETV2_COUNTS}

# Infer.transforms of ppcls/configs/ImageNet/PPLCNet/PPLCNet_x*.yaml (all eight alike) and
# ppcls/configs/ImageNet/PPHGNetV2/PPHGNetV2_B*.yaml (all seven alike), PaddleClas 2.6.
PADDLECLAS_INFER_TRANSFORMS = {
    "pp_lcnet": """
    - DecodeImage: {to_rgb: True, channel_first: False}
    - ResizeImage: {resize_short: 256}
    - CropImage: {size: 224}
    - NormalizeImage:
        {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}
    - ToCHWImage:
    """,
    "pp_hgnet_v2": """
    - DecodeImage: {to_rgb: True, channel_first: False}
    - ResizeImage: {resize_short: 232, interpolation: bicubic, backend: pil}
    - CropImage: {size: 224}
    - NormalizeImage:
        {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}
    - ToCHWImage:
    """,
}


def paddleclas_preprocess(module: str) -> PreprocessConfig:
    return PreprocessConfig.from_paddleclas_ops(yaml.safe_load(PADDLECLAS_INFER_TRANSFORMS[module]))


@pytest.mark.parametrize(("module", "name"), EVERY_SIZE, ids=[row[1] for row in EVERY_SIZE])
def test_default_preprocessing_is_paddleclas_infer_config(module, name):
    assert get_model(name).preprocess == paddleclas_preprocess(module)


@dataclass
class Reference:
    module: str
    name: str
    alias: str
    checkpoint: Path
    files: list[Path]
    scores: np.ndarray  # PaddleClas's softmax, one row per file


@pytest.fixture(scope="module", params=SMALLEST, ids=[row[1] for row in SMALLEST])
def reference(request, photos, tmp_path_factory) -> Reference:
    import paddle

    module, name, alias = request.param
    files = sorted(photos.values())
    preprocess = get_model(name).preprocess
    batch = np.stack([preprocess_image(load_image(path), preprocess) for path in files])
    paddle.seed(7)
    model = ref.legendary_model(module, name, class_num=CLASS_NUM)
    calibration = [preprocess_image(image, preprocess) for image in ref.calibration_images()]
    ref.calibrate_batch_norm(model, np.stack(calibration))
    ref.spread_classifier(model, batch, model.fc)
    scores = ref.softmax_scores(model, batch)
    # Scores depend on the photo (calibrated statistics), or the comparison would prove little.
    assert np.abs(scores - scores[0]).max() > 0.02
    checkpoint = tmp_path_factory.mktemp("paddleclas") / f"{name}_pretrained.pdparams"
    paddle.save(model.state_dict(), str(checkpoint))
    return Reference(module, name, alias, checkpoint, files, scores)


def assert_predictions_match(output: str, reference: Reference) -> None:
    lines = {Path(r["file_name"]).name: r for r in map(json.loads, output.splitlines())
             if r.get("file_name")}
    assert set(lines) == {path.name for path in reference.files}
    for path, expected in zip(reference.files, reference.scores):
        line = lines[path.name]
        top5 = np.argsort(-expected, kind="stable")[:5]
        assert line["class_ids"] == top5.tolist(), path.name
        np.testing.assert_allclose(line["scores"], expected[top5], rtol=0, atol=1e-5)


def test_export_and_predict_agree_with_paddleclas_forward(reference, photos, tmp_path):
    out = tmp_path / "export"
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "-m", reference.name, "-p", str(reference.checkpoint),
                                 "-o", str(out), "--class-num", str(CLASS_NUM)])
    assert result.exit_code == 0, result.output
    assert read_card(out / "inference.yml").preprocess == paddleclas_preprocess(reference.module)
    result = runner.invoke(cli, ["predict", "-i", str(reference.files[0].parent),
                                 "--model", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert_predictions_match(result.output, reference)


def test_executor_persistable_reads_the_state_dict_by_paddlex_name(reference):
    result = CliRunner().invoke(cli, [
        "predict", "-i", str(reference.files[0].parent), "--engine", "executor-persistable",
        "--model-name", reference.alias, "-p", str(reference.checkpoint),
        "--class-num", str(CLASS_NUM), "--json"])
    assert result.exit_code == 0, result.output
    assert_predictions_match(result.output, reference)


@pytest.mark.parametrize(("module", "name"), EVERY_SIZE, ids=[row[1] for row in EVERY_SIZE])
def test_every_size_has_paddleclas_keys_shapes_and_parameter_count(module, name):
    import paddle

    with paddle.LazyGuard():
        theirs = ref.legendary_model(module, name, class_num=1000)
        ours = get_model(name).build(class_num=1000)
    shapes = {key: list(var.shape) for key, var in theirs.state_dict().items()}
    assert {key: list(var.shape) for key, var in ours.state_dict().items()} == shapes
    trainable = sum(math.prod(p.shape) for p in theirs.parameters() if not p.stop_gradient)
    assert trainable == COUNTS[name]
