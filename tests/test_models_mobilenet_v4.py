"""MobileNetV4 family: every size PaddleX lists is registered under its name; structure,
names, sizes and math are PaddleClas 2.x's."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.mobilenet_v4 import CONFIGS, MQA, MobileNetV4

from .conftest import built

NAMES = [f"MobileNetV4_{s}" for s in ("conv_large", "conv_medium", "conv_small",
                                      "hybrid_large", "hybrid_medium")]
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own MobileNetV4_* built from the
# wheel; tests/test_paddleclas_reference_mobilenet_v4.py checks keys and shapes against it.
EXACT = {"MobileNetV4_conv_small": 3_774_024, "MobileNetV4_conv_medium": 9_715_512,
         "MobileNetV4_conv_large": 32_590_864, "MobileNetV4_hybrid_medium": 11_074_648,
         "MobileNetV4_hybrid_large": 37_764_624}


def lazy(name: str):
    with paddle.LazyGuard():
        return get_model(name).build(class_num=1000)


def test_every_size_paddlex_lists_is_registered_under_its_name():
    assert list_models("MobileNetV4*") == NAMES
    for name in NAMES:
        spec = get_model(name)
        assert spec.family == "mobilenet_v4" and spec.card_name == name


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_paddleclas_one(name):
    net = lazy(name)
    assert sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient) == EXACT[name]


def test_block_counts_are_paddleclas_config_rows():
    rows = {size: len(rows) for size, rows in CONFIGS.items()}
    assert rows == {"conv_small": 17, "conv_medium": 23, "conv_large": 28,
                    "hybrid_medium": 32, "hybrid_large": 37}
    assert [sum(row[0] == MQA for row in CONFIGS[s]) for s in ("hybrid_medium", "hybrid_large")] \
        == [8, 8]


def test_state_dict_keys_are_paddleclas_and_name_the_variables():
    net = lazy("MobileNetV4_hybrid_medium")
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert shapes["conv_stem.conv.weight"] == [32, 3, 3, 3]
    assert shapes["blocks.0.conv_exp.conv.weight"] == [128, 32, 3, 3]
    assert shapes["blocks.3.dw_start.bn._mean"] == [80]
    assert "blocks.4.dw_start.conv.weight" not in shapes  # kernel 0: no such conv
    assert shapes["blocks.7.query_proj.weight"] == [256, 160, 1, 1]
    assert shapes["blocks.7.key_down_proj.conv.weight"] == [160, 1, 3, 3]
    assert shapes["blocks.7.layer_scale.gamma"] == [160]
    assert shapes["blocks.23.key_proj.weight"] == [64, 256, 1, 1]
    assert "blocks.23.key_down_proj.conv.weight" not in shapes  # kv stride 1
    assert shapes["conv_head.bn._variance"] == [1280]
    assert shapes["classifier.weight"] == [1280, 1000]
    assert all(key == var.name for key, var in net.state_dict().items())


def test_fused_attention_is_refused():
    with pytest.raises(ValueError, match="use_fused_attn"):
        MobileNetV4("hybrid_medium", 3, use_fused_attn=True)


@pytest.mark.parametrize("name", ["MobileNetV4_conv_small", "MobileNetV4_hybrid_medium"])
def test_forward_gives_finite_logits(name):
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype="float32")
    out = built(name)(paddle.to_tensor(x)).numpy()
    assert out.shape == (2, 3) and np.isfinite(out).all()
