"""Exports built from the training config (issue 20): PaddleClas's own model, built with the
``Arch`` arguments of the recipes that made ppinfer's exports silently wrong, against
``ppinfer export -c CONFIG.yaml``: the same scores (within 1e-4) on the same input. The default
arguments give other scores on the same checkpoint (so these tests can fail), and without a
config the export says which score-changing argument it assumed.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

import ppinfer
from ppinfer.errors import CheckpointError, ConfigError

from .paddleclas_reference import calibrate_batch_norm, legendary_model, spread_classifier

NORMALIZE = {"scale": 0.00392157, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
             "order": ""}

# (id, PaddleClas module, factory, Arch arguments, classes, image shape [C, H, W])
ROWS = [
    ("mobilenetv3-dropout-null", "mobilenet_v3", "MobileNetV3_small_x1_0",
     {"dropout_prob": None}, 10, [3, 224, 224]),
    ("pplcnet-dropout-0", "pp_lcnet", "PPLCNet_x1_0", {"dropout_prob": 0.0}, 10,
     [3, 224, 224]),
    ("pulc-textline-strides", "pp_lcnet", "PPLCNet_x1_0",
     {"stride_list": [2, [2, 1], [2, 1], [2, 1], [2, 1]], "class_expand": 1280}, 2,
     [3, 80, 160]),
    ("pulc-image-orientation-no-last-conv", "pp_lcnet", "PPLCNet_x1_0",
     {"use_last_conv": False}, 4, [3, 224, 224]),
    ("pplcnetv2-no-last-conv", "pp_lcnet_v2", "PPLCNetV2_small", {"use_last_conv": False}, 4,
     [3, 224, 224]),
    ("pphgnet-no-last-conv", "pp_hgnet", "PPHGNet_tiny", {"use_last_conv": False}, 4,
     [3, 224, 224]),
]


def _batch(photos, shape) -> np.ndarray:
    """The photos resized to H x W and normalised as the config's Infer transforms say."""
    _, height, width = shape
    rows = []
    for path in photos.values():
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        img = cv2.resize(rgb, (width, height)).astype(np.float32) * NORMALIZE["scale"]
        img = (img - NORMALIZE["mean"]) / NORMALIZE["std"]
        rows.append(img.transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def _config(path, factory, arguments, classes, shape) -> None:
    doc = {
        "Global": {"image_shape": shape},
        "Arch": {"name": factory, "class_num": classes, **arguments},
        "Infer": {"transforms": [
            {"DecodeImage": {"to_rgb": True, "channel_first": False}},
            {"ResizeImage": {"size": [shape[2], shape[1]]}},
            {"NormalizeImage": NORMALIZE},
            {"ToCHWImage": None},
        ]},
    }
    path.write_text(yaml.safe_dump(doc))


def _scores(model_dir, batch) -> np.ndarray:
    with ppinfer.load(model_dir, engine="analysis") as predictor:
        engine = predictor.engine
        return engine.probabilities(engine.execute(batch))


@pytest.mark.parametrize(("row", "module", "factory", "arguments", "classes", "shape"), ROWS,
                         ids=[r[0] for r in ROWS])
def test_an_export_from_the_training_config_scores_as_paddleclas(
        row, module, factory, arguments, classes, shape, paddleclas_root, photos, tmp_path):
    import paddle

    paddle.disable_static()
    paddle.seed(3)
    model = legendary_model(paddleclas_root, module, factory, class_num=classes, **arguments)
    batch = _batch(photos, shape)
    x = paddle.to_tensor(batch)
    calibrate_batch_norm(model, x)
    fc = model.fc
    want = spread_classifier(model, fc, x, low=0.3, high=0.9)
    checkpoint = tmp_path / "best_model.pdparams"
    paddle.save(model.state_dict(), str(checkpoint))
    config = tmp_path / "config.yaml"
    _config(config, factory, arguments, classes, shape)

    result = ppinfer.export(None, checkpoint, tmp_path / "out", config=config)
    assert result.note is None and result.input_shape == tuple(shape)
    got = _scores(result.output, batch)
    assert got.argmax(1).tolist() == want.argmax(1).tolist()
    np.testing.assert_allclose(got, want, atol=1e-4)
    card = yaml.safe_load((result.output / "inference.yml").read_text())
    assert card["ppinfer"]["arguments_from"] == str(config)
    resize = next(op["ResizeImage"] for op in card["PreProcess"]["transform_ops"]
                  if "ResizeImage" in op)
    assert resize.get("size") == [shape[2], shape[1]] or resize.get("resize_short")

    # The same checkpoint with PaddleClas's default arguments: other scores, or refused.
    try:
        assumed = ppinfer.export(factory, checkpoint, tmp_path / "assumed", class_num=classes,
                                 image_shape=tuple(shape))
    except CheckpointError:
        return  # use_last_conv: False leaves no last_conv weights: refused, not wrong
    off = np.abs(_scores(assumed.output, batch) - want).max()
    assert off > 1e-3, "the defaults happened to give the same scores: the test proves nothing"
    if "dropout_prob" in arguments:
        assert "Assumed dropout_prob=" in assumed.note and "-c" in assumed.note


def test_an_argument_ppinfer_does_not_implement_is_refused_by_name(tmp_path):
    config = tmp_path / "config.yaml"
    _config(config, "PPLCNet_x1_0", {"act": "prelu_everywhere", "se_ratio": 0.5}, 10,
            [3, 224, 224])
    with pytest.raises(ConfigError, match=r"Arch\.se_ratio .* does not implement"):
        ppinfer.export(None, tmp_path / "none.pdparams", tmp_path / "out", config=config)


def test_a_model_name_that_contradicts_the_config_is_refused(tmp_path):
    config = tmp_path / "config.yaml"
    _config(config, "PPLCNet_x1_0", {}, 10, [3, 224, 224])
    with pytest.raises(ConfigError, match="contradicts Arch.name PPLCNet_x1_0"):
        ppinfer.export("ResNet50_vd", tmp_path / "none.pdparams", tmp_path / "out",
                       config=config)
