"""ResizeImage ``interpolation`` in inference.yml: PaddleX's and PaddleClas's spellings are read,
and what ppinfer writes is a spelling both of them accept.

The readers themselves (PaddleX 3.7's ResizeImage builder, PaddleClas 2.6's deploy ResizeImage)
are exercised in tests/test_paddlex.py where they are installed; these tests pin the tables.
"""

from __future__ import annotations

import itertools

import pytest
import yaml

from ppinfer.modelfiles.modelcard import ModelCard, read_card, write_card
from ppinfer.pipeline.preprocess_config import (
    BACKENDS,
    INTERPOLATIONS,
    PreprocessConfig,
    PreprocessConfigError,
)

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

# What PaddleX 3.7 accepts (paddlex/inference/models/common/vision/processors.py, upper-cased)
# and PaddleClas 2.6 accepts (deploy/python/preprocess.py UnifiedResize, lower-cased), per backend.
PADDLEX_ACCEPTS = {
    "cv2": {"NEAREST", "LINEAR", "BICUBIC", "AREA", "LANCZOS4"},
    "pil": {"NEAREST", "BILINEAR", "BICUBIC", "BOX", "LANCZOS4"},
}
PADDLECLAS_ACCEPTS = {
    "cv2": {"nearest", "bilinear", "area", "bicubic", "lanczos"},
    "pil": {"nearest", "bilinear", "bicubic", "box", "lanczos", "hamming"},
}
# The defaults when the key is absent: PaddleClas bilinear for both; PaddleX "LINEAR", which
# only the cv2 backend knows.
PADDLEX_DEFAULT_OK = {"cv2": True, "pil": False}


def _resize_args(cfg: PreprocessConfig) -> dict:
    ops = yaml.safe_load(yaml.safe_dump(cfg.to_paddleclas_ops()))
    return next(op["ResizeImage"] for op in ops if "ResizeImage" in op)


def _ops_with(resize: dict) -> list[dict]:
    return [{"ResizeImage": {"resize_short": 256, **resize}}, {"CropImage": {"size": 224}},
            {"NormalizeImage": {"order": ""}}, {"ToCHWImage": None}]


@pytest.mark.parametrize(
    ("backend", "spelling", "meaning"),
    [
        ("cv2", "NEAREST", "nearest"), ("cv2", "LINEAR", "bilinear"),
        ("cv2", "BICUBIC", "bicubic"), ("cv2", "CUBIC", "bicubic"), ("cv2", "AREA", "area"),
        ("cv2", "LANCZOS4", "lanczos"),
        ("pil", "NEAREST", "nearest"), ("pil", "BILINEAR", "bilinear"),
        ("pil", "BICUBIC", "bicubic"), ("pil", "BOX", "area"), ("pil", "LANCZOS4", "lanczos"),
    ],
)
def test_paddlex_spellings_are_read(backend, spelling, meaning):
    resize = {"interpolation": spelling} if backend == "cv2" else {
        "interpolation": spelling, "backend": backend}
    cfg = PreprocessConfig.from_paddleclas_ops(_ops_with(resize))
    assert (cfg.backend, cfg.interpolation) == (backend, meaning)


@pytest.mark.parametrize(
    ("backend", "spelling", "meaning"),
    [
        ("cv2", "nearest", "nearest"), ("cv2", "bilinear", "bilinear"),
        ("cv2", "bicubic", "bicubic"), ("cv2", "area", "area"), ("cv2", "lanczos", "lanczos"),
        ("pil", "bilinear", "bilinear"), ("pil", "bicubic", "bicubic"), ("pil", "box", "area"),
        ("pil", "lanczos", "lanczos"), ("PIL", "Bicubic", "bicubic"),
    ],
)
def test_paddleclas_spellings_are_read(backend, spelling, meaning):
    cfg = PreprocessConfig.from_paddleclas_ops(
        _ops_with({"interpolation": spelling, "backend": backend}))
    assert (cfg.backend, cfg.interpolation) == (backend.lower(), meaning)


def test_no_interpolation_means_bilinear_for_both_backends():
    for resize in ({}, {"backend": "pil"}):
        assert PreprocessConfig.from_paddleclas_ops(_ops_with(resize)).interpolation == "bilinear"


@pytest.mark.parametrize(
    ("backend", "spelling"),
    [("cv2", "box"), ("cv2", "hamming"), ("pil", "hamming"), ("cv2", "random"), ("cv2", 2)],
)
def test_spellings_neither_ppinfer_nor_the_backend_can_do_are_refused(backend, spelling):
    with pytest.raises(PreprocessConfigError, match=f"backend {backend}"):
        PreprocessConfig.from_paddleclas_ops(
            _ops_with({"interpolation": spelling, "backend": backend}))


@pytest.mark.parametrize(("backend", "interpolation"),
                         list(itertools.product(BACKENDS, INTERPOLATIONS)))
def test_written_spelling_is_read_back_as_written(backend, interpolation):
    cfg = PreprocessConfig(backend=backend, interpolation=interpolation)
    resize = _resize_args(cfg)
    back = PreprocessConfig.from_paddleclas_ops(_ops_with(resize))
    assert (back.backend, back.interpolation) == (backend, interpolation)


@pytest.mark.parametrize(("backend", "interpolation"),
                         list(itertools.product(BACKENDS, INTERPOLATIONS)))
def test_written_spelling_is_one_paddlex_and_paddleclas_both_accept(backend, interpolation):
    resize = _resize_args(PreprocessConfig(backend=backend, interpolation=interpolation))
    spelling = resize.get("interpolation")
    if spelling is None:
        assert PADDLEX_DEFAULT_OK[backend]  # both fall back to bilinear
        assert interpolation == "bilinear"
        return
    assert spelling.upper() in PADDLEX_ACCEPTS[backend]
    if interpolation == "lanczos":  # no common word: "lanczos" (PaddleClas) vs LANCZOS4 (PaddleX)
        assert spelling == "LANCZOS4"
    else:
        assert spelling.lower() in PADDLECLAS_ACCEPTS[backend]


def test_exported_card_has_no_bilinear_word_paddlex_refuses(tmp_path):
    write_card(tmp_path, ModelCard(model_name="ResNet50_vd", preprocess=PreprocessConfig()))
    text = (tmp_path / "inference.yml").read_text(encoding="utf-8")
    assert "bilinear" not in text and "interpolation" not in text
    assert read_card(tmp_path / "inference.yml").preprocess == PreprocessConfig()


@pytest.mark.parametrize(
    ("ours", "paddlex"),
    [("PPLCNet_x1_0", "PP-LCNet_x1_0"), ("PPLCNet_x0_25", "PP-LCNet_x0_25"),
     ("PPHGNetV2_B4", "PP-HGNetV2-B4"), ("PPHGNet_tiny", "PP-HGNet_tiny"),
     ("PPLCNetV2_base", "PP-LCNetV2_base"), ("MobileNetV3_small_x0_35", "MobileNetV3_small_x0_35"),
     ("ResNet50_vd", "ResNet50_vd")],
)
def test_card_names_the_model_as_paddlex_does_and_keeps_ppinfers_name(tmp_path, ours, paddlex):
    write_card(tmp_path, ModelCard(model_name=ours, paddlex_name=paddlex,
                                   preprocess=PreprocessConfig()))
    doc = yaml.safe_load((tmp_path / "inference.yml").read_text(encoding="utf-8"))
    assert doc["Global"]["model_name"] == paddlex
    assert doc.get("ppinfer", {}).get("model_name") == (ours if ours != paddlex else None)
    assert read_card(tmp_path / "inference.yml").model_name == ours
