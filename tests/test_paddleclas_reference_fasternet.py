"""FasterNet against PaddleClas 2.6's own code (``model_zoo/fasternet.py`` from the wheel, see
paddleclas_reference.py): FasterNet_T0 (exact GELU) and FasterNet_T2 (relu) with random weights,
batch-norm statistics calibrated on scikit-image's photos and the head aimed so each photo has
its own top-1, save state dicts; ppinfer exports and predicts them; top-5 equal and scores
within 1e-5 of PaddleClas's forward + softmax. Every size: PaddleClas's keys and shapes."""

from __future__ import annotations

import numpy as np
import pytest

from ppinfer.models import get_model
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig

from .conftest import CLASS_NUM
from .paddleclas_reference import (
    Reference,
    aim_classifier,
    build_reference,
    calibration_images,
    photo_batch,
)
from .zoo_reference import (
    check_executor_persistable,
    check_export_and_predict,
    check_keys_and_shapes,
)

MODULE = "model_zoo.fasternet"
SIZES = ["FasterNet_T0", "FasterNet_T1", "FasterNet_T2", "FasterNet_S", "FasterNet_M",
         "FasterNet_L"]
# Infer.transforms of ppcls/configs/ImageNet/FasterNet/FasterNet_*.yaml (all six alike):
# ResizeImage resize_short 256 (cv2, bilinear), CropImage 224, ImageNet mean/std.
INFER = PreprocessConfig.from_paddleclas_ops([
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                        "std": [0.229, 0.224, 0.225], "order": ""}},
    {"ToCHWImage": None}])


@pytest.mark.parametrize("name", SIZES)
def test_default_preprocessing_is_paddleclas_infer_config(name):
    assert get_model(name).preprocess == INFER == IMAGENET_PREPROCESS


@pytest.fixture(scope="module", params=["FasterNet_T0", "FasterNet_T2"])
def reference(request, paddleclas_root, photos, tmp_path_factory) -> Reference:
    name = request.param
    out = tmp_path_factory.mktemp("paddleclas") / f"{name}_pretrained.pdparams"
    ref = build_reference(paddleclas_root, MODULE, name, sorted(photos.values()), out,
                          class_num=CLASS_NUM, high=0.7,
                          calibration=photo_batch(name, calibration_images()),
                          prepare=lambda model, x: aim_classifier(model, model.head, x))
    assert np.abs(ref.scores - ref.scores[0]).max() > 0.02  # scores depend on the photo
    return ref


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    check_export_and_predict(reference, tmp_path / "export", INFER)


def test_executor_persistable_reads_the_state_dict_by_paddlex_name(reference):
    check_executor_persistable(reference, reference.name.replace("_", "-"))


@pytest.mark.parametrize("name", SIZES)
def test_every_size_has_paddleclas_keys_and_shapes(name, paddleclas_root):
    check_keys_and_shapes(paddleclas_root, MODULE, name)
