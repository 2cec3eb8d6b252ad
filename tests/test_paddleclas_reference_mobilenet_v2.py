"""MobileNetV2 (x0.25, x0.5, x1.0, x1.5, x2.0) against PaddleClas 2.6's own code
(``model_zoo/mobilenet_v2.py``, paddleclas_reference.py): PaddleClas's MobileNetV2_x0_25 with
random weights and calibrated statistics saves a state dict; ppinfer exports and predicts it,
top-5 equal and scores within 1e-5 of PaddleClas's forward; the same weights keyed by their
1.x variable names load too. Every size has PaddleClas's keys, variable names, shapes and
parameter count; PaddleX's names (``MobileNetV2_x1_0``) reach them."""

from __future__ import annotations

import numpy as np
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
from .paddleclas_reference import legendary_model

MODULE = "model_zoo.mobilenet_v2"
# PaddleClas name -> PaddleX name (PaddleX lists these five; PaddleClas's x0_75 it does not)
PADDLEX = {"MobileNetV2": "MobileNetV2_x1_0", "MobileNetV2_x0_25": "MobileNetV2_x0_25",
           "MobileNetV2_x0_5": "MobileNetV2_x0_5", "MobileNetV2_x1_5": "MobileNetV2_x1_5",
           "MobileNetV2_x2_0": "MobileNetV2_x2_0"}
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own models built from the wheel.
EXACT = {"MobileNetV2_x0_25": 1_517_392, "MobileNetV2_x0_5": 1_965_736,
         "MobileNetV2": 3_505_960, "MobileNetV2_x1_5": 6_852_712,
         "MobileNetV2_x2_0": 11_262_312}


def test_every_size_is_registered_with_its_paddlex_name():
    assert list_models("MobileNetV2*") == sorted(PADDLEX)
    for name, paddlex in PADDLEX.items():
        spec = get_model(name)
        assert spec.family == "mobilenet_v2" and get_model(paddlex) is spec
        assert spec.card_name == paddlex
        assert spec.preprocess == IMAGENET_PREPROCESS  # ppcls/configs/ImageNet/MobileNetV2/*


@pytest.mark.parametrize("name", sorted(PADDLEX))
def test_every_size_has_paddleclas_keys_shapes_and_parameter_count(name, paddleclas_root):
    assert_paddleclas_keys_shapes_and_count(paddleclas_root, MODULE, name, EXACT[name])


def test_variables_keep_paddleclas_1x_names(paddleclas_root):
    from ppinfer.models.layers import fresh_parameter_names

    with paddle.LazyGuard(), fresh_parameter_names():
        theirs = legendary_model(paddleclas_root, MODULE, "MobileNetV2", class_num=1000)
        ours = built("MobileNetV2", class_num=1000)
    names = {key: var.name for key, var in ours.state_dict().items()}
    assert names == {key: var.name for key, var in theirs.state_dict().items()}
    assert names["conv3.conv3_2._bottleneck_conv._batch_norm._mean"] == "conv3_2_dwise_bn_mean"
    assert names["out.bias"] == "fc10_offset"


def test_prefix_name_prefixes_variables_not_keys():
    with paddle.LazyGuard():
        spec = get_model("MobileNetV2_x0_25")
        net = spec.build(class_num=3, arguments=spec.arguments({"prefix_name": "s_"}))
    assert net.state_dict()["conv1._conv.weight"].name == "s_conv1_1_weights"


@pytest.fixture(scope="module")
def reference(paddleclas_root, photos, tmp_path_factory):
    return calibrated_reference(paddleclas_root, MODULE, "MobileNetV2_x0_25", photos,
                                tmp_path_factory.mktemp("paddleclas"), classifier="out",
                                varied=False)  # the varied photos' statistics leave near-ties


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    assert_export_agrees(reference, "MobileNetV2_x0_25", tmp_path / "export")


def test_a_file_keyed_by_1x_variable_names_predicts_the_same(reference, tmp_path):
    with paddle.LazyGuard():
        names = {k: v.name for k, v in built("MobileNetV2_x0_25").state_dict().items()}
    by_name = {names[key]: np.asarray(value) for key, value in reference.state.items()}
    path = tmp_path / "variable_names.pdparams"
    paddle.save(by_name, str(path))
    assert_executor_persistable_agrees(reference, "MobileNetV2_x0_25", params=path)
