"""PP-LCNet family: every registered width runs; structure, names, sizes and math are PaddleClas
2.x's (its state-dict keys are the variable names, so its .pdparams load as they are)."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.pp_lcnet import SEModule
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS

from .conftest import built, se_gate

WIDTHS = ("x0_25", "x0_35", "x0_5", "x0_75", "x1_0", "x1_5", "x2_0", "x2_5")
NAMES = [f"PPLCNet_{w}" for w in WIDTHS]

# PaddleClas docs/zh_CN/models/ImageNet1k/PP-LCNet.md, "Params(M)", rounded to 0.1M.
DOCUMENTED_MILLIONS = dict(zip(NAMES, (1.5, 1.6, 1.9, 2.4, 3.0, 4.5, 6.5, 9.0)))
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own PPLCNet_x* built from the
# wheel; tests/test_paddleclas_reference_pp.py checks them against that model itself.
EXACT = dict(zip(NAMES, (1_521_184, 1_643_090, 1_879_576, 2_357_008, 2_952_520, 4_499_832,
                         6_521_512, 9_017_560)))


def trainable(name: str) -> int:
    with paddle.LazyGuard():
        net = get_model(name).build(class_num=1000)
    return sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient)


def test_every_width_is_registered_with_its_paddlex_alias():
    assert list_models("PPLCNet_*") == sorted(NAMES)
    for width, name in zip(WIDTHS, NAMES):
        spec = get_model(name)
        assert spec.family == "pp_lcnet"
        assert spec.aliases == (f"PP-LCNet_{width}",)
        assert get_model(f"PP-LCNet_{width}") is spec


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_paddleclas_documented_one(name):
    count = trainable(name)
    assert round(count / 1e6, 1) == DOCUMENTED_MILLIONS[name]
    assert count == EXACT[name]


def test_preprocessing_is_paddleclas_config():
    """ppcls/configs/ImageNet/PPLCNet/PPLCNet_x*.yaml: resize_short 256, crop 224, cv2's
    default (bilinear) resize, ImageNet mean/std."""
    for name in NAMES:
        assert get_model(name).preprocess == IMAGENET_PREPROCESS
        assert get_model(name).input_shape == (3, 224, 224)


def test_state_dict_keys_are_paddleclas_and_name_the_variables():
    net = built("PPLCNet_x1_0", class_num=1000)
    shapes = {key: list(var.shape) for key, var in net.state_dict().items()}
    assert all(key == var.name for key, var in net.state_dict().items())
    assert shapes["conv1.conv.weight"] == [16, 3, 3, 3]
    assert shapes["conv1.bn._variance"] == [16]
    assert shapes["blocks2.0.dw_conv.conv.weight"] == [16, 1, 3, 3]
    assert shapes["blocks2.0.pw_conv.conv.weight"] == [32, 16, 1, 1]
    assert shapes["blocks5.5.dw_conv.conv.weight"] == [256, 1, 5, 5]
    assert shapes["blocks6.0.se.conv1.weight"] == [64, 256, 1, 1]  # SE on the input width
    assert shapes["blocks6.1.se.conv2.bias"] == [512]
    assert not any(key.startswith("blocks5.0.se") for key in shapes)
    assert shapes["last_conv.weight"] == [1280, 512, 1, 1]
    assert "last_conv.bias" not in shapes
    assert shapes["fc.weight"] == [1280, 1000]
    assert shapes["fc.bias"] == [1000]
    # 13 conv+bn units x 2 (dw, pw) + stem = 27 x 5, 2 SE x 4, head conv, fc x 2
    assert len(shapes) == 27 * 5 + 2 * 4 + 1 + 2


def test_se_gate_is_paddle_nn_hardsigmoid():
    """gate = clip(x / 6 + 0.5, 0, 1) as paddle.nn.Hardsigmoid (not MobileNetV3's 0.2 slope)."""
    pre_gate = np.array([-4.0, -3.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0], dtype="float32")
    out = se_gate(SEModule(8, "test_gate_se"), pre_gate)
    np.testing.assert_allclose(out, np.clip(pre_gate / 6 + 0.5, 0.0, 1.0), rtol=1e-6)


def test_head_dropout_scales_at_inference():
    """PaddleClas's downscale_in_infer dropout (p 0.2) multiplies by 0.8 in eval."""
    net = built("PPLCNet_x0_25")
    np.testing.assert_allclose(net.dropout(paddle.ones([1, 4])).numpy(), 0.8, rtol=1e-6)


@pytest.mark.parametrize("name", ["PPLCNet_x0_25", "PPLCNet_x2_5"])
def test_forward_gives_finite_logits(name):
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype="float32")
    out = built(name)(paddle.to_tensor(x)).numpy()
    assert out.shape == (2, 3)
    assert np.isfinite(out).all()


def test_two_instances_in_one_process_share_names():
    a, b = built("PPLCNet_x0_5"), built("PPLCNet_x0_5")
    assert [v.name for v in a.state_dict().values()] == [v.name for v in b.state_dict().values()]
