"""MobileNetV1 (x0.25, x0.5, x0.75, x1.0) against PaddleClas 2.6's own code
(paddleclas_reference.py): PaddleClas's MobileNetV1_x0_25 with random weights and calibrated
statistics saves a state dict; ppinfer exports and predicts it, top-5 equal and scores within
1e-5 of PaddleClas's forward. Every size has PaddleClas's keys, shapes and parameter count;
PaddleX's names (``MobileNetV1_x1_0``) reach them."""

from __future__ import annotations

import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS

from .conftest import built
from .paddleclas_families import (
    assert_executor_persistable_agrees,
    assert_export_agrees,
    assert_paddleclas_keys_shapes_and_count,
    calibrated_reference,
)

MODULE = "mobilenet_v1"
PADDLEX = {"MobileNetV1": "MobileNetV1_x1_0", "MobileNetV1_x0_25": "MobileNetV1_x0_25",
           "MobileNetV1_x0_5": "MobileNetV1_x0_5", "MobileNetV1_x0_75": "MobileNetV1_x0_75"}
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own models built from the wheel.
EXACT = {"MobileNetV1_x0_25": 470_072, "MobileNetV1_x0_5": 1_331_592,
         "MobileNetV1_x0_75": 2_585_560, "MobileNetV1": 4_231_976}


def test_every_size_is_registered_with_its_paddlex_name():
    assert list_models("MobileNetV1*") == sorted(PADDLEX)
    for name, paddlex in PADDLEX.items():
        spec = get_model(name)
        assert spec.family == "mobilenet_v1" and get_model(paddlex) is spec
        assert spec.card_name == paddlex
        assert spec.preprocess == IMAGENET_PREPROCESS  # ppcls/configs/ImageNet/MobileNetV1/*


@pytest.mark.parametrize("name", sorted(PADDLEX))
def test_every_size_has_paddleclas_keys_shapes_and_parameter_count(name, paddleclas_root):
    assert_paddleclas_keys_shapes_and_count(paddleclas_root, MODULE, name, EXACT[name])
    with paddle.LazyGuard():
        assert all(key == var.name for key, var in built(name).state_dict().items())


def test_x0_25_widths_are_truncated_not_rounded_to_eight():
    with paddle.LazyGuard():
        shapes = {k: list(v.shape) for k, v in built("MobileNetV1_x0_25").state_dict().items()}
    assert shapes["conv.conv.weight"] == [8, 3, 3, 3]
    assert shapes["blocks.0.depthwise_conv.conv.weight"] == [8, 1, 3, 3]
    assert shapes["blocks.0.pointwise_conv.conv.weight"] == [16, 8, 1, 1]
    assert shapes["blocks.12.pointwise_conv.bn._variance"] == [256]
    assert shapes["fc.weight"] == [256, 3]


@pytest.fixture(scope="module")
def reference(paddleclas_root, photos, tmp_path_factory):
    return calibrated_reference(paddleclas_root, MODULE, "MobileNetV1_x0_25", photos,
                                tmp_path_factory.mktemp("paddleclas"))


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    assert_export_agrees(reference, "MobileNetV1_x0_25", tmp_path / "export")


def test_executor_persistable_reads_the_state_dict_by_paddlex_name(reference):
    assert_executor_persistable_agrees(reference, "MobileNetV1_x0_25")
