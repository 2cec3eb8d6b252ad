"""PP-HGNet (tiny, small, base) against PaddleClas 2.6's own code (paddleclas_reference.py):
PaddleClas's PPHGNet_tiny with random weights and calibrated statistics saves a state dict;
ppinfer exports and predicts it, top-5 equal and scores within 1e-5 of PaddleClas's forward.
Every size has PaddleClas's keys, shapes and parameter count; PaddleX's names reach them."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
import yaml

from ppinfer.errors import ConfigError
from ppinfer.models import get_model, list_models
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from .conftest import built
from .paddleclas_families import (
    assert_executor_persistable_agrees,
    assert_export_agrees,
    assert_paddleclas_keys_shapes_and_count,
    calibrated_reference,
)
from .paddleclas_reference import legendary_model

MODULE = "pp_hgnet"
NAMES = ["PPHGNet_base", "PPHGNet_small", "PPHGNet_tiny"]
# Exact trainable counts (1000 classes) of PaddleClas 2.6's own PPHGNet_* built from the wheel.
EXACT = {"PPHGNet_tiny": 14_735_864, "PPHGNet_small": 24_360_872, "PPHGNet_base": 71_578_184}

# ppcls/configs/ImageNet/PPHGNet/PPHGNet_{tiny,small,base}.yaml, Infer.transforms: tiny resizes
# the short side to 232, small and base to 236.
INFER_TRANSFORMS = """
- DecodeImage: {to_rgb: True, channel_first: False}
- ResizeImage: {resize_short: %d, interpolation: bicubic, backend: pil}
- CropImage: {size: 224}
- NormalizeImage:
    {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}
- ToCHWImage:
"""
RESIZE_SHORT = {"PPHGNet_tiny": 232, "PPHGNet_small": 236, "PPHGNet_base": 236}


def test_every_size_is_registered_with_its_paddlex_name():
    assert list_models("PPHGNet_*") == NAMES
    for name in NAMES:
        spec = get_model(name)
        paddlex = name.replace("PPHGNet", "PP-HGNet")
        assert spec.family == "pp_hgnet" and spec.aliases == (paddlex,)
        assert get_model(paddlex) is spec and spec.card_name == paddlex


@pytest.mark.parametrize("name", NAMES)
def test_default_preprocessing_is_paddleclas_infer_config(name):
    ops = yaml.safe_load(INFER_TRANSFORMS % RESIZE_SHORT[name])
    assert get_model(name).preprocess == PreprocessConfig.from_paddleclas_ops(ops)


@pytest.mark.parametrize("name", NAMES)
def test_every_size_has_paddleclas_keys_shapes_and_parameter_count(name, paddleclas_root):
    assert_paddleclas_keys_shapes_and_count(paddleclas_root, MODULE, name, EXACT[name])
    with paddle.LazyGuard():
        assert all(key == var.name for key, var in built(name).state_dict().items())


def test_base_head_dropout_scales_at_inference_and_tiny_has_none():
    """PPHGNet_base's factory passes dropout_prob 0.2 (downscale_in_infer: x0.8 in eval); tiny
    and small keep the constructor's 0, and a training config may set theirs."""
    with paddle.LazyGuard():  # the head alone runs: no weights needed
        base, tiny = built("PPHGNet_base"), built("PPHGNet_tiny")
        spec = get_model("PPHGNet_small")
        small = spec.build(class_num=3, arguments=spec.arguments({"dropout_prob": 0.5}))
    for net, kept in ((base, 0.8), (small, 0.5)):
        net.dropout.eval()
        np.testing.assert_allclose(net.dropout(paddle.ones([1, 4])).numpy(), kept, rtol=1e-6)
    assert tiny.dropout is None


def test_base_takes_no_dropout_prob_as_paddleclas_factory_cannot(paddleclas_root):
    """PaddleClas's PPHGNet_base(dropout_prob=...) fails (the keyword twice), so no config
    trained one: ppinfer refuses the argument by name instead of guessing."""
    with pytest.raises(TypeError, match="dropout_prob"), paddle.LazyGuard():
        legendary_model(paddleclas_root, MODULE, "PPHGNet_base", dropout_prob=0.0)
    with pytest.raises(ConfigError, match="cfg.yaml sets dropout_prob, which the name "
                                          "PPHGNet_base already sets to 0.2"):
        get_model("PP-HGNet_base").arguments({"dropout_prob": 0.0}, {"dropout_prob": "cfg.yaml"})


def test_without_last_conv_the_classifier_reads_the_last_stage():
    with paddle.LazyGuard():
        spec = get_model("PPHGNet_tiny")
        net = spec.build(class_num=3, arguments=spec.arguments({"use_last_conv": False}))
    assert net.last_conv is None and list(net.fc.weight.shape) == [768, 3]


@pytest.fixture(scope="module")
def reference(paddleclas_root, photos, tmp_path_factory):
    # small: one of PaddleX's core models (tiny and base share its code and differ in widths,
    # depths and head, which the keys, shapes and counts above check); a random one cannot
    # tell the photos apart, so its head is fitted by least squares
    return calibrated_reference(paddleclas_root, MODULE, "PPHGNet_small", photos,
                                tmp_path_factory.mktemp("paddleclas"), fit_head=True)


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    assert_export_agrees(reference, "PPHGNet_small", tmp_path / "export")


def test_executor_persistable_reads_the_state_dict_by_paddlex_name(reference):
    assert_executor_persistable_agrees(reference, "PP-HGNet_small")
