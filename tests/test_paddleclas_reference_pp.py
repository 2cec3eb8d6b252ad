"""PP-LCNet and PP-HGNetV2 against PaddleClas 2.6's own code (the wheel from the package index,
see paddleclas_reference.py): its model, with random weights, batch-norm statistics calibrated on
scikit-image's varied photos (and a few training steps where the random network gives the test
photos one top-1), saves a state dict; ppinfer exports and predicts it; top-5 equal and scores
within 1e-5 of PaddleClas's own forward + softmax. Also: every registered size has PaddleClas's
keys, shapes and counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from ppinfer.modelfiles.modelcard import read_card
from ppinfer.models import get_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from .conftest import CLASS_NUM
from .paddleclas_reference import (
    Reference,
    assert_agrees,
    build_reference,
    calibration_images,
    export,
    legendary_model,
    photo_batch,
    predicted,
)
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


@pytest.fixture(scope="module", params=SMALLEST, ids=[row[1] for row in SMALLEST])
def reference(request, paddleclas_root, photos, tmp_path_factory) -> tuple[Reference, str]:
    """PaddleClas's model with BN statistics from scikit-image's varied photos, and its PaddleX
    alias."""
    module, name, alias = request.param
    out = tmp_path_factory.mktemp("paddleclas") / f"{name}_pretrained.pdparams"
    ref = build_reference(paddleclas_root, module, name, sorted(photos.values()), out,
                          class_num=CLASS_NUM, calibration=photo_batch(name, calibration_images()),
                          high=0.7)
    # Scores depend on the photo (calibrated statistics), or the comparison would prove little.
    assert np.abs(ref.scores - ref.scores[0]).max() > 0.02
    return ref, alias


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    ref, _ = reference
    out = export(ref.name, ref.pdparams, tmp_path / "export", CLASS_NUM)
    assert read_card(out / "inference.yml").preprocess == paddleclas_preprocess(ref.module)
    assert_agrees(predicted(["-i", str(ref.photos[0].parent), "--model", str(out)]), ref)


def test_executor_persistable_reads_the_state_dict_by_paddlex_name(reference):
    ref, alias = reference
    assert_agrees(predicted(["-i", str(ref.photos[0].parent), "--engine", "executor-persistable",
                             "--model-name", alias, "-p", str(ref.pdparams),
                             "--class-num", str(CLASS_NUM)]), ref)


@pytest.mark.parametrize(("module", "name"), EVERY_SIZE, ids=[row[1] for row in EVERY_SIZE])
def test_every_size_has_paddleclas_keys_shapes_and_parameter_count(module, name, paddleclas_root):
    import paddle

    with paddle.LazyGuard():
        theirs = legendary_model(paddleclas_root, module, name, class_num=1000)
        ours = get_model(name).build(class_num=1000)
    shapes = {key: list(var.shape) for key, var in theirs.state_dict().items()}
    assert {key: list(var.shape) for key, var in ours.state_dict().items()} == shapes
    trainable = sum(math.prod(p.shape) for p in theirs.parameters() if not p.stop_gradient)
    assert trainable == COUNTS[name]
