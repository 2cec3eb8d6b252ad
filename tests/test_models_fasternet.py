"""FasterNet family: every size PaddleX lists is registered under PaddleClas's and PaddleX's
names; structure, names, sizes and math are PaddleClas 2.x's."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ppinfer.errors import ConfigError
from ppinfer.models import get_model, list_models
from ppinfer.models.fasternet import SIZES, FasterNet, PartialConv

from .conftest import built

NAMES = [f"FasterNet_{s}" for s in ("L", "M", "S", "T0", "T1", "T2")]
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own FasterNet_* built from the wheel
# (its docs round them: 3.9M, 7.6M, 15.0M, 31.1M, 53.5M, 93.4M);
# tests/test_paddleclas_reference_fasternet.py checks keys and shapes against that model itself.
EXACT = {"FasterNet_T0": 3_905_500, "FasterNet_T1": 7_595_368, "FasterNet_T2": 14_982_888,
         "FasterNet_S": 31_181_032, "FasterNet_M": 53_521_464, "FasterNet_L": 93_465_192}


def lazy(name: str):
    with paddle.LazyGuard():
        return get_model(name).build(class_num=1000)


def test_every_size_is_registered_with_its_paddlex_name():
    assert list_models("FasterNet*") == NAMES
    for name in NAMES:
        spec = get_model(name)
        paddlex = name.replace("_", "-")
        assert spec.family == "fasternet" and spec.aliases == (paddlex,)
        assert get_model(paddlex) is spec and spec.card_name == paddlex


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_paddleclas_one(name):
    net = lazy(name)
    assert sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient) == EXACT[name]


def test_state_dict_keys_are_paddleclas_and_name_the_variables():
    net = lazy("FasterNet_T0")
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert shapes["patch_embed.proj.weight"] == [40, 3, 4, 4]
    assert shapes["patch_embed.norm._mean"] == [40]
    assert shapes["stages.0.blocks.0.spatial_mixing.partial_conv3.weight"] == [10, 10, 3, 3]
    assert shapes["stages.0.blocks.0.mlp.0.weight"] == [80, 40, 1, 1]
    assert shapes["stages.0.blocks.0.mlp.1._variance"] == [80]
    assert shapes["stages.0.blocks.0.mlp.3.weight"] == [40, 80, 1, 1]
    assert shapes["stages.1.reduction.weight"] == [80, 40, 2, 2]
    assert shapes["stages.5.norm.weight"] == [320]
    assert shapes["stages.4.blocks.7.mlp.0.weight"] == [320, 160, 1, 1]
    assert shapes["avgpool_pre_head.1.weight"] == [1280, 320, 1, 1]
    assert shapes["head.weight"] == [1280, 1000]
    assert all(key == var.name for key, var in net.state_dict().items())


def test_t0_and_t1_use_gelu_the_others_relu():
    assert [SIZES[s].act for s in ("T0", "T1", "T2", "S", "M", "L")] == ["GELU"] * 2 + ["RELU"] * 4


def test_partial_conv_mixes_the_first_quarter_and_passes_the_rest():
    conv = PartialConv(8, "probe")
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 8, 5, 5)).astype("float32"))
    y = conv(x).numpy()
    np.testing.assert_array_equal(y[:, 2:], x.numpy()[:, 2:])
    np.testing.assert_allclose(y[:, :2], conv.partial_conv3(x[:, :2]).numpy(), atol=1e-6)


def test_both_pconv_forwards_are_accepted_and_another_is_refused():
    spec = get_model("FasterNet_T0")
    with paddle.LazyGuard():
        spec.build(class_num=3, arguments=spec.arguments({"pconv_fw_type": "slicing"}))
    with pytest.raises(ConfigError, match="pconv_fw_type"):
        spec.arguments({"pconv_fw_type": "gather"})
    with pytest.raises(ValueError, match="pconv_fw_type must be one of split_cat, slicing"):
        FasterNet(SIZES["T0"], 3, pconv_fw_type="gather")


def test_forward_gives_finite_logits():
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype="float32")
    out = built("FasterNet_T0")(paddle.to_tensor(x)).numpy()
    assert out.shape == (2, 3) and np.isfinite(out).all()
