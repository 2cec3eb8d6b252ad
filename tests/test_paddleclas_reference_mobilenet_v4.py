"""MobileNetV4 against PaddleClas 2.6's own code (``legendary_models/mobilenet_v4.py`` from the
wheel, see paddleclas_reference.py): conv_small and hybrid_medium (multi-query attention, layer
scales) with random weights, batch-norm statistics calibrated on scikit-image's photos and the
classifier aimed so each photo has its own top-1, save state dicts; ppinfer exports and predicts
them; top-5 equal and scores within 1e-5 of PaddleClas's forward + softmax. Every size:
PaddleClas's keys and shapes."""

from __future__ import annotations

import numpy as np
import pytest

from ppinfer.models import get_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from .conftest import CLASS_NUM
from .paddleclas_reference import (
    Reference,
    aim_classifier,
    build_reference,
    calibrate_batch_norm,
    calibration_images,
    photo_batch,
)
from .zoo_reference import (
    check_executor_persistable,
    check_export_and_predict,
    check_keys_and_shapes,
)

MODULE = "mobilenet_v4"
# Infer.transforms of ppcls/configs/ImageNet/MobileNetV4/MobileNetV4_*.yaml: ResizeImage
# resize_short (cv2, bilinear), CropImage, ImageNet mean/std.
RESIZE_CROP = {"conv_small": (256, 224), "conv_medium": (256, 224), "conv_large": (256, 224),
               "hybrid_medium": (256, 256), "hybrid_large": (448, 448)}
SIZES = [f"MobileNetV4_{size}" for size in RESIZE_CROP]


def paddleclas_preprocess(name: str) -> PreprocessConfig:
    resize, crop = RESIZE_CROP[name.removeprefix("MobileNetV4_")]
    return PreprocessConfig.from_paddleclas_ops([
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": resize}}, {"CropImage": {"size": crop}},
        {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                            "std": [0.229, 0.224, 0.225], "order": ""}},
        {"ToCHWImage": None}])


@pytest.mark.parametrize("name", SIZES)
def test_default_preprocessing_and_input_are_paddleclas_infer_config(name):
    spec = get_model(name)
    assert spec.preprocess == paddleclas_preprocess(name)
    assert spec.input_shape == (3, *spec.preprocess.crop_size)


def prepare(model, x) -> None:
    """Layer scales start at 1e-5, which would leave the hybrid blocks out of the scores: give
    them values a trained model has, calibrate batch norm again for them (or the activations
    overflow), then aim the classifier."""
    import paddle

    rng = np.random.default_rng(3)
    scales = [value for key, value in model.state_dict().items()
              if key.endswith("layer_scale.gamma")]
    for value in scales:
        value.set_value(paddle.to_tensor(rng.uniform(0.1, 1.0, value.shape), "float32"))
    if scales:
        calibrate_batch_norm(model, paddle.to_tensor(
            photo_batch("MobileNetV4_hybrid_medium", calibration_images())))
    aim_classifier(model, model.classifier, x)


@pytest.fixture(scope="module", params=["MobileNetV4_conv_small", "MobileNetV4_hybrid_medium"])
def reference(request, paddleclas_root, photos, tmp_path_factory) -> Reference:
    name = request.param
    out = tmp_path_factory.mktemp("paddleclas") / f"{name}_pretrained.pdparams"
    ref = build_reference(paddleclas_root, MODULE, name, sorted(photos.values()), out,
                          class_num=CLASS_NUM, high=0.7,
                          calibration=photo_batch(name, calibration_images()), prepare=prepare)
    assert np.abs(ref.scores - ref.scores[0]).max() > 0.02  # scores depend on the photo
    return ref


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    # Paddle Inference's oneDNN kernels (softmax, batched matmul) round attention otherwise
    # than the executor: 2e-5 on hybrid_medium's scores, so the brief's 1e-4 there; the
    # executor-persistable test below holds 1e-5.
    atol = 1e-4 if "hybrid" in reference.name else 1e-5
    check_export_and_predict(reference, tmp_path / "export",
                             paddleclas_preprocess(reference.name), atol)


def test_executor_persistable_reads_the_state_dict(reference):
    check_executor_persistable(reference, reference.name)


@pytest.mark.parametrize("name", SIZES)
def test_every_size_has_paddleclas_keys_and_shapes(name, paddleclas_root):
    check_keys_and_shapes(paddleclas_root, MODULE, name)
