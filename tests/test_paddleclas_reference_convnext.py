"""ConvNeXt against PaddleClas 2.6's own code (``model_zoo/convnext.py`` from the wheel, see
paddleclas_reference.py): ConvNeXt_tiny with random weights and layer scales large enough that
every block counts saves a state dict; ppinfer exports and predicts it; top-5 equal and scores
within 1e-5 of PaddleClas's forward + softmax. Every other size: PaddleClas's keys and shapes."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from ppinfer.models import get_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from .conftest import CLASS_NUM
from .paddleclas_reference import Reference, aim_classifier, build_reference
from .zoo_reference import (
    check_executor_persistable,
    check_export_and_predict,
    check_keys_and_shapes,
)

MODULE = "model_zoo.convnext"
SIZES = ["ConvNeXt_tiny", "ConvNeXt_small", "ConvNeXt_base_224", "ConvNeXt_base_384",
         "ConvNeXt_large_224", "ConvNeXt_large_384"]

# Infer.transforms of ppcls/configs/ImageNet/ConvNeXt/ConvNeXt_{tiny,small,base_224,large_224}
# .yaml; the *_384 configs resize the short side to 384 and crop 384.
INFER_TRANSFORMS = """
- DecodeImage: {to_rgb: True, channel_first: False}
- ResizeImage: {resize_short: %d, interpolation: bicubic, backend: pil}
- CropImage: {size: %d}
- NormalizeImage:
    {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}
- ToCHWImage:
"""


def paddleclas_preprocess(name: str) -> PreprocessConfig:
    sizes = (384, 384) if name.endswith("_384") else (256, 224)
    return PreprocessConfig.from_paddleclas_ops(yaml.safe_load(INFER_TRANSFORMS % sizes))


@pytest.mark.parametrize("name", SIZES)
def test_default_preprocessing_and_input_are_paddleclas_infer_config(name):
    spec = get_model(name)
    assert spec.preprocess == paddleclas_preprocess(name)
    side = spec.preprocess.crop_size[0]
    assert spec.input_shape == (3, side, side)


def prepare(model, x) -> None:
    """PaddleClas starts every block's ``gamma`` at 1e-6, which would leave the blocks out of
    the scores: give them values a trained model has (about 0.1 to 1); then aim the head so
    each photo has its own top-1 (training ConvNeXt to tell them apart takes minutes)."""
    import paddle

    rng = np.random.default_rng(3)
    for key, value in model.state_dict().items():
        if key.endswith(".gamma"):
            value.set_value(paddle.to_tensor(rng.uniform(0.1, 1.0, value.shape), "float32"))
    aim_classifier(model, model.head, x)


@pytest.fixture(scope="module")
def reference(paddleclas_root, photos, tmp_path_factory) -> Reference:
    out = tmp_path_factory.mktemp("paddleclas") / "ConvNeXt_tiny_pretrained.pdparams"
    ref = build_reference(paddleclas_root, MODULE, "ConvNeXt_tiny", sorted(photos.values()),
                          out, class_num=CLASS_NUM, high=0.7,
                          prepare=prepare)
    assert np.abs(ref.scores - ref.scores[0]).max() > 0.02  # scores depend on the photo
    return ref


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    check_export_and_predict(reference, tmp_path / "export", paddleclas_preprocess(reference.name))


def test_executor_persistable_reads_the_state_dict(reference):
    check_executor_persistable(reference, reference.name)


@pytest.mark.parametrize("name", ["ConvNeXt_small", "ConvNeXt_base_224", "ConvNeXt_large_224"])
def test_every_size_has_paddleclas_keys_and_shapes(name, paddleclas_root):
    # PaddleClas's constructor rescales the initial classifier, which a lazily built model
    # cannot: its model is built for real (about 3 s per 100M parameters).
    check_keys_and_shapes(paddleclas_root, MODULE, name, lazy=False)


@pytest.mark.parametrize("size", ["base", "large"])
def test_384_models_are_their_224_networks(size):
    """PaddleClas's ConvNeXt_{base,large}_384 factories build the same depths and widths as
    the _224 ones (only the training resolution differs): same keys and shapes."""
    import paddle

    with paddle.LazyGuard():
        nets = [get_model(f"ConvNeXt_{size}_{side}").build(class_num=1000) for side in (224, 384)]
    shapes = [{k: list(v.shape) for k, v in net.state_dict().items()} for net in nets]
    assert shapes[0] == shapes[1]
