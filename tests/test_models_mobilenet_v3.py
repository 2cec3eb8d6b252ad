"""MobileNetV3 family: every registered variant runs; names, sizes and math are PaddleClas's."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.mobilenet_v3 import MobileNetV3, SqueezeExcite, make_divisible

from .conftest import built as _built
from .conftest import se_gate
from .conftest import variable_shapes as _shapes

MOBILENETS = list_models("MobileNetV3*")

# Trainable parameters with 1000 classes. PaddleClas's docs/zh_cn/models/Mobile.md lists these
# truncated to 0.01M (2.10, 2.67, 3.91, 5.47, 7.44 / 1.66, 1.90, 2.37, 2.94, 3.62); all agree
# except large_x1_0, listed as 5.47 where the architecture gives 5.48.
PARAMETER_COUNTS = {
    "MobileNetV3_large_x0_35": 2_104_328,
    "MobileNetV3_large_x0_5": 2_673_422,
    "MobileNetV3_large_x0_75": 3_912_248,
    "MobileNetV3_large_x1_0": 5_480_206,
    "MobileNetV3_large_x1_25": 7_443_308,
    "MobileNetV3_small_x0_35": 1_665_954,
    "MobileNetV3_small_x0_5": 1_902_536,
    "MobileNetV3_small_x0_75": 2_375_106,
    "MobileNetV3_small_x1_0": 2_939_958,
    "MobileNetV3_small_x1_25": 3_627_370,
}


def _input(shape: tuple[int, ...] = (2, 3, 64, 64)) -> np.ndarray:
    return np.random.default_rng(0).random(shape, dtype="float32")


def test_the_family_is_registered() -> None:
    scales = ("x0_35", "x0_5", "x0_75", "x1_0", "x1_25")
    expected = [f"MobileNetV3_{arch}_{s}" for arch in ("large", "small") for s in scales]
    assert sorted(expected) == MOBILENETS
    assert {get_model(n).family for n in MOBILENETS} == {"mobilenet_v3"}


@pytest.mark.parametrize("name", MOBILENETS)
def test_forward_gives_finite_logits(name: str) -> None:
    out = _built(name)(paddle.to_tensor(_input())).numpy()
    assert out.shape == (2, 3)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("name", MOBILENETS)
def test_parameter_count(name: str) -> None:
    net = _built(name, class_num=1000)
    trainable = sum(int(np.prod(p.shape)) for p in net.parameters() if not p.stop_gradient)
    assert trainable == PARAMETER_COUNTS[name]


def test_large_x1_0_names() -> None:
    shapes = _shapes(_built("MobileNetV3_large_x1_0"))
    assert shapes["conv1_weights"] == [16, 3, 3, 3]
    for suffix in ("scale", "offset", "mean", "variance"):
        assert shapes[f"conv1_bn_{suffix}"] == [16]
    assert shapes["conv2_expand_weights"] == [16, 16, 1, 1]
    assert shapes["conv2_depthwise_weights"] == [16, 1, 3, 3]
    assert shapes["conv2_linear_bn_variance"] == [16]
    assert "conv2_se_1_weights" not in shapes  # large's first SE is in its fourth block
    # Squeeze-excite of conv5 (72 channels): 72 // 4 = 18, no rounding to a multiple of 8.
    assert shapes["conv5_se_1_weights"] == [18, 72, 1, 1]
    assert shapes["conv5_se_1_offset"] == [18]
    assert shapes["conv5_se_2_weights"] == [72, 18, 1, 1]
    assert shapes["conv5_se_2_offset"] == [72]
    assert shapes["conv16_linear_weights"] == [160, 960, 1, 1]
    assert "conv17_expand_weights" not in shapes
    assert shapes["conv_last_weights"] == [960, 160, 1, 1]
    assert shapes["conv_last_bn_mean"] == [960]
    assert shapes["last_1x1_conv_weights"] == [1280, 960, 1, 1]
    assert shapes["fc_weights"] == [1280, 3]
    assert shapes["fc_offset"] == [3]
    assert len(shapes) == 270  # 47 conv+bn x 5, 8 SE x 4, head conv, fc x 2


def test_small_x1_0_names() -> None:
    shapes = _shapes(_built("MobileNetV3_small_x1_0"))
    assert shapes["conv2_se_1_weights"] == [4, 16, 1, 1]  # small's first block has SE
    assert shapes["conv2_depthwise_weights"] == [16, 1, 3, 3]
    assert shapes["conv12_linear_weights"] == [96, 576, 1, 1]
    assert "conv13_expand_weights" not in shapes
    assert shapes["conv_last_weights"] == [576, 96, 1, 1]
    assert shapes["last_1x1_conv_weights"] == [1280, 576, 1, 1]
    assert shapes["fc_weights"] == [1280, 3]
    assert len(shapes) == 214  # 35 conv+bn x 5, 9 SE x 4, head conv, fc x 2


def test_structured_keys_follow_paddleclas_2_0() -> None:
    keys = set(_built("MobileNetV3_small_x1_0").state_dict())
    assert {
        "conv1.conv.weight",
        "conv1.bn._mean",
        "conv2.mid_se.conv1.weight",
        "conv12.linear_conv.bn._variance",
        "last_second_conv.bn.weight",
        "last_conv.weight",
        "out.bias",
    } <= keys


@pytest.mark.parametrize(
    ("value", "expected"),
    [(16 * 0.35, 8), (72 * 0.35, 24), (88 * 0.75, 64), (11.9, 16), (1200, 1200)],
)
def test_make_divisible(value: float, expected: int) -> None:
    assert make_divisible(value) == expected


def test_se_gate_is_fluid_hard_sigmoid() -> None:
    """gate = clip(0.2 x + 0.5, 0, 1): PaddleClas's slope, not paddle.nn's default 1/6."""
    pre_gate = np.array([-3.0, -2.5, -1.0, 0.0, 1.0, 2.0, 2.5, 4.0], dtype="float32")
    out = se_gate(SqueezeExcite(8, "test_gate_se"), pre_gate)
    np.testing.assert_allclose(out, np.clip(0.2 * pre_gate + 0.5, 0.0, 1.0), rtol=1e-6)


def test_head_dropout_scales_at_inference() -> None:
    """PaddleClas's downscale_in_infer dropout multiplies by 1 - 0.2 in eval, not by 1."""
    net = _built("MobileNetV3_small_x0_35")
    np.testing.assert_allclose(net.dropout(paddle.ones([1, 4])).numpy(), 0.8, rtol=1e-6)


def test_two_instances_in_one_process() -> None:
    """Dygraph normally refuses a parameter name twice; PaddleClas's names are fixed."""
    a = MobileNetV3("small", 0.5, class_num=3)
    b = MobileNetV3("small", 0.5, class_num=3)
    assert _shapes(a) == _shapes(b)
    a.eval()
    b.eval()
    b.set_state_dict(a.state_dict())
    x = paddle.to_tensor(_input((1, 3, 32, 32)))
    np.testing.assert_allclose(a(x).numpy(), b(x).numpy(), rtol=1e-6)


def test_unknown_arch_is_refused() -> None:
    with pytest.raises(ValueError, match="arch must be one of large, small"):
        MobileNetV3("medium")
