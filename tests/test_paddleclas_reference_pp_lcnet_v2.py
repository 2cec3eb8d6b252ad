"""PP-LCNetV2 (small, base, large) against PaddleClas 2.6's own code (paddleclas_reference.py):
PaddleClas's PPLCNetV2_small with random weights and calibrated statistics saves a state dict;
ppinfer exports and predicts it, top-5 equal and scores within 1e-5 of PaddleClas's forward.
Every size has PaddleClas's keys, shapes and parameter count; PaddleX's names reach them."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppinfer.errors import ConfigError
from ppinfer.models import get_model, list_models
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS

from .conftest import built
from .paddleclas_families import (
    assert_executor_persistable_agrees,
    assert_export_agrees,
    assert_paddleclas_keys_shapes_and_count,
    calibrated_reference,
)

MODULE = "pp_lcnet_v2"
NAMES = ["PPLCNetV2_base", "PPLCNetV2_large", "PPLCNetV2_small"]
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own PPLCNetV2_* built from the wheel.
EXACT = {"PPLCNetV2_small": 4_193_448, "PPLCNetV2_base": 6_800_360,
         "PPLCNetV2_large": 10_716_840}


def test_every_size_is_registered_with_its_paddlex_name():
    assert list_models("PPLCNetV2_*") == NAMES
    for name in NAMES:
        spec = get_model(name)
        paddlex = name.replace("PPLCNetV2", "PP-LCNetV2")
        assert spec.family == "pp_lcnet_v2" and spec.aliases == (paddlex,)
        assert get_model(paddlex) is spec and spec.card_name == paddlex


def test_preprocessing_is_paddleclas_config():
    """ppcls/configs/ImageNet/PPLCNetV2/PPLCNetV2_*.yaml, Infer: resize_short 256, crop 224,
    cv2's bilinear resize, ImageNet mean/std: ppinfer's ImageNet default."""
    assert all(get_model(name).preprocess == IMAGENET_PREPROCESS for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_size_has_paddleclas_keys_shapes_and_parameter_count(name, paddleclas_root):
    assert_paddleclas_keys_shapes_and_count(paddleclas_root, MODULE, name, EXACT[name])
    with paddle.LazyGuard():
        assert all(key == var.name for key, var in built(name).state_dict().items())


def test_rep_blocks_hold_every_branch_and_the_fused_conv():
    with paddle.LazyGuard():
        shapes = {k: list(v.shape) for k, v in built("PPLCNetV2_base").state_dict().items()}
    # stage 3's first block (stride 2): kernels 5 and 3; later blocks add the 1x1 branch
    assert shapes["stages.2.0.dw_conv_list.1.conv.weight"] == [256, 1, 3, 3]
    assert "stages.2.0.dw_conv_list.2.conv.weight" not in shapes
    assert shapes["stages.2.1.dw_conv_list.2.conv.weight"] == [512, 1, 1, 1]
    assert shapes["stages.2.1.dw_conv.bias"] == [512]  # re-parameterised conv, never run
    assert shapes["stages.2.1.se.conv1.weight"] == [128, 512, 1, 1]
    assert shapes["stages.2.1.pw_conv_1.conv.weight"] == [256, 512, 1, 1]
    assert shapes["stages.0.0.dw_conv.bn._mean"] == [64]  # plain blocks: conv + bn, input width
    assert shapes["last_conv.weight"] == [1280, 1024, 1, 1] and shapes["fc.bias"] == [3]


def test_head_dropout_scales_at_inference():
    """The factories' dropout_prob 0.2 (downscale_in_infer: x0.8 in eval). A config cannot set
    it: PaddleClas's factories pass it themselves and fail on a second one."""
    net = built("PPLCNetV2_small")
    np.testing.assert_allclose(net.dropout(paddle.ones([1, 4])).numpy(), 0.8, rtol=1e-6)
    from ppinfer.models.arguments import BY_NAME

    (dropout,) = [p for p in get_model("PPLCNetV2_small").params if p.name == "dropout_prob"]
    assert dropout.kind == BY_NAME  # PaddleClas's factory sets 0.2: a config cannot


def test_an_activation_ppinfer_does_not_implement_is_refused():
    with pytest.raises(ConfigError, match="sets act to prelu; PPLCNetV2_small's act must be "
                                          "one of relu, hardswish, relu6, leaky_relu"):
        get_model("PPLCNetV2_small").arguments({"act": "prelu"})


@pytest.fixture(scope="module")
def reference(paddleclas_root, photos, tmp_path_factory):
    return calibrated_reference(paddleclas_root, MODULE, "PPLCNetV2_small", photos,
                                tmp_path_factory.mktemp("paddleclas"))


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    assert_export_agrees(reference, "PPLCNetV2_small", tmp_path / "export")


def test_executor_persistable_reads_the_state_dict_by_paddlex_name(reference):
    assert_executor_persistable_agrees(reference, "PP-LCNetV2_small")
