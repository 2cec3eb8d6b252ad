"""ConvNeXt family: every registered size is there under PaddleClas's (= PaddleX's) name;
structure, names, sizes, arguments and math are PaddleClas 2.x's."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.convnext import ChannelsFirstLayerNorm
from ppinfer.models.legacy_safe import gelu

from .conftest import built

NAMES = ["ConvNeXt_base_224", "ConvNeXt_base_384", "ConvNeXt_large_224", "ConvNeXt_large_384",
         "ConvNeXt_small", "ConvNeXt_tiny"]
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own ConvNeXt_* built from the wheel
# (its docs round them: 28.59M, 50.22M, 88.59M, 197.77M);
# tests/test_paddleclas_reference_convnext.py checks keys and shapes against that model itself.
EXACT = {"ConvNeXt_tiny": 28_589_128, "ConvNeXt_small": 50_223_688,
         "ConvNeXt_base_224": 88_591_464, "ConvNeXt_base_384": 88_591_464,
         "ConvNeXt_large_224": 197_767_336, "ConvNeXt_large_384": 197_767_336}


def lazy(name: str, **given):
    spec = get_model(name)
    with paddle.LazyGuard():
        return spec.build(class_num=1000, arguments=spec.arguments(given))


def test_every_size_paddlex_lists_is_registered_under_its_name():
    assert list_models("ConvNeXt*") == NAMES
    for name in NAMES:
        spec = get_model(name)
        assert spec.family == "convnext" and spec.aliases == () and spec.card_name == name


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_paddleclas_one(name):
    net = lazy(name)
    assert sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient) == EXACT[name]


def test_state_dict_keys_are_paddleclas_and_name_the_variables():
    shapes = {k: list(v.shape) for k, v in lazy("ConvNeXt_tiny").state_dict().items()}
    assert shapes["downsample_layers.0.0.weight"] == [96, 3, 4, 4]
    assert shapes["downsample_layers.0.1.weight"] == [96]  # channels-first layer norm
    assert shapes["downsample_layers.3.0.bias"] == [384]
    assert shapes["downsample_layers.3.1.weight"] == [768, 384, 2, 2]
    assert shapes["stages.2.8.dwconv.weight"] == [384, 1, 7, 7]
    assert shapes["stages.2.8.pwconv1.weight"] == [384, 1536]
    assert shapes["stages.3.2.gamma"] == [768]
    assert shapes["norm.weight"] == [768] and shapes["head.weight"] == [768, 1000]
    assert all(key == var.name for key, var in lazy("ConvNeXt_tiny").state_dict().items())


def test_no_layer_scale_means_no_gamma():
    """``layer_scale_init_value: 0`` in a training config: PaddleClas builds no ``gamma``."""
    keys = lazy("ConvNeXt_tiny", layer_scale_init_value=0.0).state_dict()
    assert not any(key.endswith("gamma") for key in keys)
    assert len(keys) == len(lazy("ConvNeXt_tiny").state_dict()) - 18


def test_training_only_arguments_are_accepted_and_change_nothing():
    plain = lazy("ConvNeXt_tiny").state_dict()
    trained = lazy("ConvNeXt_tiny", drop_path_rate=0.1, head_init_scale=1.0).state_dict()
    assert {k: v.shape for k, v in plain.items()} == {k: v.shape for k, v in trained.items()}


def test_channels_first_layer_norm_is_paddleclas_math():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3, 4)).astype("float32") * 3 + 1
    norm = ChannelsFirstLayerNorm(5, "probe")
    weight, bias = (rng.standard_normal(5).astype("float32") for _ in range(2))
    norm.weight.set_value(weight)
    norm.bias.set_value(bias)
    mean = x.mean(axis=1, keepdims=True)
    expected = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axis=1, keepdims=True) + 1e-6)
    expected = weight[None, :, None, None] * expected + bias[None, :, None, None]
    np.testing.assert_allclose(norm(paddle.to_tensor(x)).numpy(), expected, atol=1e-5)


def test_gelu_is_paddle_exact_gelu():
    x = paddle.to_tensor(np.linspace(-6, 6, 101, dtype="float32"))
    np.testing.assert_allclose(gelu(x).numpy(), paddle.nn.GELU()(x).numpy(), atol=1e-6)


def test_forward_gives_finite_logits():
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype="float32")
    out = built("ConvNeXt_tiny")(paddle.to_tensor(x)).numpy()
    assert out.shape == (2, 3) and np.isfinite(out).all()
