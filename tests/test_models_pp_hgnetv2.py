"""PP-HGNetV2 family: every registered size runs; structure, names, sizes, learnable affine
blocks and preprocessing are PaddleClas 2.x's."""

from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.pp_hgnetv2 import ARCHS, PPHGNetV2

from .conftest import built

NAMES = [f"PPHGNetV2_B{i}" for i in range(7)]

# PaddleClas's docs give no parameter counts for PP-HGNetV2 (docs/zh_CN/models/ImageNet1k/
# PP-HGNetV2.md lists accuracy and latency only; model_list.md has "-"). These are the exact
# trainable counts (1000 classes) of PaddleClas 2.6's own PPHGNetV2_B* built from the wheel;
# tests/test_paddleclas_reference_pp.py checks them against that model itself.
EXACT = dict(zip(NAMES, (5_996_550, 6_343_158, 11_221_356, 16_292_216, 19_796_680,
                         39_569_064, 75_256_776)))


def lazy(name: str):
    with paddle.LazyGuard():
        return get_model(name).build(class_num=1000)


def test_every_size_is_registered_with_its_paddlex_alias():
    assert list_models("PPHGNetV2*") == NAMES
    for i, name in enumerate(NAMES):
        spec = get_model(name)
        assert spec.family == "pp_hgnetv2"
        assert spec.aliases == (f"PP-HGNetV2-B{i}",)
        assert get_model(f"PP-HGNetV2-B{i}") is spec


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_paddleclas_one(name):
    net = lazy(name)
    assert sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient) == EXACT[name]


def test_preprocessing_is_paddleclas_config():
    """ppcls/configs/ImageNet/PPHGNetV2/PPHGNetV2_B{0-6}.yaml, Infer: resize_short 232 with
    Pillow's bicubic, crop 224, ImageNet mean/std: the same for all seven."""
    for name in NAMES:
        pre = get_model(name).preprocess
        assert (pre.resize_short, pre.crop_size) == (232, (224, 224))
        assert (pre.interpolation, pre.backend) == ("bicubic", "pil")
        assert pre.mean == (0.485, 0.456, 0.406) and pre.std == (0.229, 0.224, 0.225)
        assert pre.scale == pytest.approx(1 / 255)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_name_the_variables(name):
    assert all(key == var.name for key, var in lazy(name).state_dict().items())


def test_b0_structure_and_learnable_affine_blocks():
    shapes = {k: list(v.shape) for k, v in lazy("PPHGNetV2_B0").state_dict().items()}
    assert shapes["stem.stem1.conv.weight"] == [16, 3, 3, 3]
    assert shapes["stem.stem2a.conv.weight"] == [8, 16, 2, 2]
    assert shapes["stem.stem3.conv.weight"] == [16, 32, 3, 3]  # pool and stem2b concatenated
    assert shapes["stem.stem1.lab.scale"] == [1]
    assert shapes["stages.0.blocks.0.layers.0.conv.weight"] == [16, 16, 3, 3]
    assert "stages.0.downsample.conv.weight" not in shapes  # stage 1 does not downsample
    assert shapes["stages.1.downsample.conv.weight"] == [64, 1, 3, 3]
    assert "stages.1.downsample.lab.scale" not in shapes  # no activation, no affine block
    assert shapes["stages.2.blocks.1.layers.2.conv1.conv.weight"] == [64, 64, 1, 1]
    assert "stages.2.blocks.1.layers.2.conv1.lab.scale" not in shapes
    assert shapes["stages.2.blocks.1.layers.2.conv2.conv.weight"] == [64, 1, 5, 5]
    assert shapes["stages.2.blocks.1.layers.2.conv2.lab.bias"] == [1]
    assert shapes["stages.3.blocks.0.aggregation_squeeze_conv.conv.weight"] == [
        512, 512 + 3 * 128, 1, 1]
    assert shapes["stages.3.blocks.0.aggregation_excitation_conv.bn._mean"] == [1024]
    assert shapes["last_conv.weight"] == [2048, 1024, 1, 1]
    assert shapes["lab.scale"] == [1] and shapes["fc.weight"] == [2048, 1000]


def test_b4_and_larger_have_no_affine_blocks():
    assert [ARCHS[f"B{i}"].use_lab for i in range(7)] == [True] * 4 + [False] * 3
    assert not any(".lab." in k or k.startswith("lab.") for k in lazy("PPHGNetV2_B4").state_dict())


def test_affine_block_scales_and_shifts():
    net = PPHGNetV2("B0", class_num=3)
    lab = net.stem.stem1.lab
    lab.scale.set_value(np.array([2.0], dtype="float32"))
    lab.bias.set_value(np.array([-0.5], dtype="float32"))
    x = paddle.to_tensor(np.array([[1.0, 3.0]], dtype="float32"))
    np.testing.assert_allclose(lab(x).numpy(), [[1.5, 5.5]])


def test_forward_gives_finite_logits():
    x = np.random.default_rng(0).random((2, 3, 64, 64), dtype="float32")
    out = built("PPHGNetV2_B0")(paddle.to_tensor(x)).numpy()
    assert out.shape == (2, 3)
    assert np.isfinite(out).all()


def test_unknown_arch_is_refused():
    with pytest.raises(ValueError, match="arch must be one of B0, B1"):
        PPHGNetV2("B7")
