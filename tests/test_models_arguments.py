"""Every constructor argument ppinfer builds gives PaddleClas's model for it: the same keys and
shapes, and the same scores on real photos, with PaddleClas 2.6's own model (the wheel, see
paddleclas_reference.py) built with the same arguments as the reference."""

from __future__ import annotations

import numpy as np
import pytest

from ppinfer.models import get_model
from ppinfer.models.arguments import BUILT, BY_NAME, DEFAULT_ONLY, NO_EFFECT
from ppinfer.models.program import build_static_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from .paddleclas_reference import (
    calibrate_batch_norm,
    calibration_images,
    legendary_model,
    photo_batch,
    softmax_scores,
)

CLASSES = 7
TEXTLINE = [2, [2, 1], [2, 1], [2, 1], [2, 1]]
# (PaddleClas module, name, arguments, input H, W)
CASES = [
    ("pp_lcnet", "PPLCNet_x0_25", {"dropout_prob": 0.0}, (224, 224)),
    ("pp_lcnet", "PPLCNet_x0_25", {"stride_list": TEXTLINE}, (80, 160)),
    ("pp_lcnet", "PPLCNet_x0_25", {"use_last_conv": False}, (224, 224)),
    ("pp_lcnet", "PPLCNet_x0_5", {"act": "relu", "dropout_prob": 0.5}, (192, 192)),
    ("pp_lcnet", "PPLCNet_x0_25", {"act": "relu6", "class_expand": 640}, (224, 224)),
    ("mobilenet_v3", "MobileNetV3_small_x0_35", {"dropout_prob": None}, (224, 224)),
    ("mobilenet_v3", "MobileNetV3_large_x0_35", {"dropout_prob": None}, (224, 224)),
    ("mobilenet_v3", "MobileNetV3_small_x0_35",
     {"dropout_prob": 0.5, "class_expand": 640, "inplanes": 24}, (224, 224)),
    ("pp_hgnet_v2", "PPHGNetV2_B0", {"use_last_conv": False}, (224, 224)),
    ("pp_hgnet_v2", "PPHGNetV2_B0", {"dropout_prob": 0.3, "class_expand": 1024}, (224, 224)),
]


def _id(case) -> str:
    return f"{case[1]}-" + "-".join(f"{k}={v}" for k, v in case[2].items())


@pytest.mark.parametrize(("module", "name", "arguments", "size"), CASES, ids=map(_id, CASES))
def test_arguments_build_paddleclas_model_and_scores(module, name, arguments, size,
                                                     paddleclas_root, ir):
    import paddle

    paddle.disable_static()
    paddle.seed(11)
    theirs = legendary_model(paddleclas_root, module, name, class_num=CLASSES, **arguments)
    height, width = size
    preprocess = PreprocessConfig(resize_size=(width, height), crop_size=(width, height))
    photos = paddle.to_tensor(photo_batch(name, calibration_images(), preprocess))
    calibrate_batch_norm(theirs, photos)
    expected = softmax_scores(theirs, photos)
    state = {key: value.numpy() for key, value in theirs.state_dict().items()}

    spec = get_model(name)
    ours = build_static_model(spec, CLASSES, (3, height, width), ir=ir,
                              arguments=spec.arguments(arguments))
    assert sorted(ours.expected.values()) == sorted(tuple(v.shape) for v in state.values())
    ours.load_state(state, source="PaddleClas's state_dict")
    got = ours.run(photos.numpy())
    assert np.abs(expected - expected.mean(axis=0)).max() > 1e-3  # the scores follow the photo
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.fixture(params=["legacy", "pir"])
def ir(request):
    from ppinfer.runtime.paddle_env import paddle_env

    if request.param == "pir" and not paddle_env().can_run_pir:
        pytest.skip("PIR programs need Paddle 3")
    return request.param


@pytest.mark.parametrize(("module", "cls", "name"), [
    ("pp_lcnet", "PPLCNet", "PPLCNet_x1_0"),
    ("mobilenet_v3", "MobileNetV3", "MobileNetV3_large_x1_0"),
    ("pp_hgnet_v2", "PPHGNetV2", "PPHGNetV2_B4"),
    ("resnet", "ResNet", "ResNet50_vd"),
    ("pp_hgnet", "PPHGNet", "PPHGNet_small"),
    ("pp_lcnet_v2", "PPLCNetV2", "PPLCNetV2_base"),
    ("mobilenet_v1", "MobileNet", "MobileNetV1"),
    ("model_zoo.mobilenet_v2", "MobileNet", "MobileNetV2"),
    ("model_zoo.convnext", "ConvNeXt", "ConvNeXt_tiny"),
    ("model_zoo.fasternet", "FasterNet", "FasterNet_T0"),
    ("mobilenet_v4", "MobileNetV4", "MobileNetV4_conv_small"),
    ("mobilenet_v4", "MobileNetV4", "MobileNetV4_hybrid_large"),
    ("model_zoo.starnet", "StarNet", "StarNet_S1"),
])
def test_declared_arguments_are_paddleclas_constructor_arguments(module, cls, name,
                                                                 paddleclas_root):
    """Every keyword PaddleClas's constructor takes is declared, with PaddleClas's default: read
    from its signature, so an argument or default ppinfer does not match cannot go unnoticed."""
    import inspect

    from .paddleclas_reference import import_legendary

    if module.startswith("model_zoo."):  # as legendary_model imports a model-zoo file
        import importlib

        from .paddleclas_reference import PACKAGE, _install_packages

        _install_packages(paddleclas_root / "paddleclas" / "ppcls")
        found = importlib.import_module(f"{PACKAGE}.arch.backbone.{module}")
    else:
        found = import_legendary(paddleclas_root, module)
    signature = inspect.signature(getattr(found, cls).__init__).parameters
    declared = {p.name: p for p in get_model(name).params}
    taken = {n for n, p in signature.items() if p.kind is p.POSITIONAL_OR_KEYWORD}
    assert taken - {"self", "class_num"} <= set(declared)
    for argument in declared.values():
        parameter = signature.get(argument.name)
        if parameter is None or argument.kind in (BY_NAME, NO_EFFECT):
            continue
        assert argument.kind in (BUILT, DEFAULT_ONLY)
        assert argument.default == parameter.default, argument.name
