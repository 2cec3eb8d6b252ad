"""StarNet family: every size PaddleX lists is registered under PaddleClas's and PaddleX's
names; structure, names, sizes and math are PaddleClas 2.x's."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.starnet import Block

from .conftest import built

NAMES = ["StarNet_S1", "StarNet_S2", "StarNet_S3", "StarNet_S4"]
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own StarNet_S* built from the wheel
# (its docs round them: 2.9M, 3.7M, 5.8M, 7.5M);
# tests/test_paddleclas_reference_starnet.py checks keys and shapes against that model itself.
EXACT = dict(zip(NAMES, (2_869_168, 3_682_024, 5_750_792, 7_482_728)))


def lazy(name: str):
    with paddle.LazyGuard():
        return get_model(name).build(class_num=1000)


def test_every_size_is_registered_with_its_paddlex_name():
    assert list_models("StarNet*") == NAMES
    for name in NAMES:
        spec = get_model(name)
        paddlex = name.replace("_", "-")
        assert spec.family == "starnet" and spec.aliases == (paddlex,)
        assert get_model(paddlex) is spec and spec.card_name == paddlex


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_paddleclas_one(name):
    net = lazy(name)
    assert sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient) == EXACT[name]


def test_state_dict_keys_are_paddleclas_and_name_the_variables():
    net = lazy("StarNet_S1")
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert shapes["stem.0.conv.weight"] == [32, 3, 3, 3] and shapes["stem.0.conv.bias"] == [32]
    assert shapes["stages.0.0.conv.weight"] == [24, 32, 3, 3]
    assert shapes["stages.0.1.dwconv.conv.weight"] == [24, 1, 7, 7]
    assert shapes["stages.0.1.dwconv.bn._mean"] == [24]
    assert shapes["stages.2.8.f1.conv.weight"] == [384, 96, 1, 1]
    assert "stages.2.8.f1.bn.weight" not in shapes  # f1, f2 and dwconv2 have no batch norm
    assert shapes["stages.2.8.g.bn._variance"] == [96]
    assert shapes["stages.3.3.dwconv2.conv.bias"] == [192]
    assert shapes["norm.weight"] == [192] and shapes["head.weight"] == [192, 1000]
    assert all(key == var.name for key, var in net.state_dict().items())


def test_star_is_relu6_of_one_branch_times_the_other():
    block = Block(2, 1, "probe")
    block.eval()
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype("float32"))
    y = block.dwconv(x)
    star = np.clip(block.f1(y).numpy(), 0, 6) * block.f2(y).numpy()
    expected = x.numpy() + block.dwconv2(block.g(paddle.to_tensor(star))).numpy()
    np.testing.assert_allclose(block(x).numpy(), expected, atol=1e-5)


def test_forward_gives_finite_logits():
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype="float32")
    out = built("StarNet_S1")(paddle.to_tensor(x)).numpy()
    assert out.shape == (2, 3) and np.isfinite(out).all()
