"""Image loading and the image -> tensor transform (ppinfer.pipeline.preprocess)."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from ppinfer.errors import ConfigError, ImageError
from ppinfer.pipeline.decode import DEFAULT_MAX_PIXELS, load_image
from ppinfer.pipeline.image_headers import header_size
from ppinfer.pipeline.preprocess import (
    load_and_preprocess,
    make_batch,
    preprocess_image,
    resized_size,
)
from ppinfer.pipeline.preprocess_config import (
    IMAGENET_PREPROCESS,
    PreprocessConfig,
    PreprocessConfigError,
    parse_scale,
)

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

CHELSEA = skdata.chelsea()  # 300x451 RGB
COFFEE = skdata.coffee()  # 400x600 RGB
CAMERA = skdata.camera()  # 512x512 gray
ASTRONAUT = skdata.astronaut()  # 512x512 RGB


def encode(rgb_or_gray: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    """Encode an RGB (or gray, or RGBA) array with OpenCV, which wants BGR(A)."""
    img = rgb_or_gray
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(ext, img, params or [])
    assert ok
    return buf.tobytes()


def write(tmp_path: Path, name: str, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


# --- load_image: good files -----------------------------------------------------------------


def test_png_roundtrip_is_exact_rgb(tmp_path):
    path = write(tmp_path, "chelsea.png", encode(CHELSEA, ".png"))
    img = load_image(path)
    assert img.dtype == np.uint8 and img.shape == CHELSEA.shape
    assert np.array_equal(img, CHELSEA)  # channel order is RGB, not BGR


def test_jpeg_matches_opencv_imread_as_paddleclas_decodes(tmp_path):
    path = write(tmp_path, "coffee.jpg", encode(COFFEE, ".jpg"))
    img = load_image(str(path))
    reference = cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]  # PaddleClas DecodeImage
    assert np.array_equal(img, reference)
    assert np.abs(img.astype(int) - COFFEE).mean() < 5


def test_gray_becomes_three_equal_channels(tmp_path):
    path = write(tmp_path, "camera.png", encode(CAMERA, ".png"))
    img = load_image(path)
    assert img.shape == (*CAMERA.shape, 3)
    for channel in range(3):
        assert np.array_equal(img[:, :, channel], CAMERA)


def test_rgba_png_alpha_is_dropped(tmp_path):
    alpha = np.linspace(0, 255, ASTRONAUT.shape[1], dtype=np.uint8)[None, :].repeat(512, 0)
    rgba = np.dstack([ASTRONAUT, alpha])
    path = write(tmp_path, "astronaut_rgba.png", encode(rgba, ".png"))
    assert np.array_equal(load_image(path), ASTRONAUT)


def test_16bit_png_is_scaled_not_truncated(tmp_path):
    exact = COFFEE.astype(np.uint16) * 257  # 0..65535, maps back to COFFEE exactly
    path = write(tmp_path, "coffee16.png", encode(exact, ".png"))
    assert np.array_equal(load_image(path), COFFEE)

    ramp = np.arange(0, 65536, 64, dtype=np.uint16).reshape(32, 32)
    path = write(tmp_path, "ramp16.png", encode(ramp, ".png"))
    img = load_image(path)
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    assert np.abs(img[:, :, 0].astype(int) - expected).max() <= 1
    assert img.max() >= 254  # scaled to the full range, not cut to the low byte


def test_16bit_color_png(tmp_path):
    path = write(tmp_path, "chelsea16.png", encode(CHELSEA.astype(np.uint16) * 257, ".png"))
    assert np.array_equal(load_image(path), CHELSEA)


def test_float_tiff_taken_as_zero_to_one(tmp_path):
    # Written by tifffile (scikit-image's): OpenCV 4.5's own float TIFF encoder is lossy.
    tifffile = pytest.importorskip("tifffile")
    values = np.linspace(-0.5, 1.5, 64 * 3, dtype=np.float32).reshape(8, 8, 3)
    tifffile.imwrite(tmp_path / "float.tiff", values, photometric="rgb")
    img = load_image(tmp_path / "float.tiff")
    expected = np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)
    assert np.abs(img.astype(int) - expected).max() <= 1


def test_cmyk_jpeg(tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow writes the CMYK JPEG")
    buf = io.BytesIO()
    image_module.fromarray(CHELSEA).convert("CMYK").save(buf, "JPEG", quality=95)
    img = load_image(write(tmp_path, "cmyk.jpg", buf.getvalue()))
    assert img.shape == CHELSEA.shape and img.dtype == np.uint8
    assert np.abs(img.astype(int) - CHELSEA).mean() < 8


def test_exif_orientation_applied_like_paddleclas(tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="Pillow writes the EXIF tag")
    exif = image_module.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    image_module.fromarray(CHELSEA).save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    path = write(tmp_path, "rotated.jpg", buf.getvalue())
    img = load_image(path)
    assert img.shape == (CHELSEA.shape[1], CHELSEA.shape[0], 3)
    assert np.array_equal(img, cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


def test_one_pixel_image(tmp_path):
    pixel = np.array([[[10, 200, 30]]], dtype=np.uint8)
    img = load_image(write(tmp_path, "dot.png", encode(pixel, ".png")))
    assert np.array_equal(img, pixel)
    tensor = preprocess_image(img)
    assert tensor.shape == (3, 224, 224)
    expected = (np.float32([10, 200, 30]) / 255 - np.float32([0.485, 0.456, 0.406])) / np.float32(
        [0.229, 0.224, 0.225]
    )
    assert np.allclose(tensor[:, 100, 100], expected, atol=1e-5)


@pytest.mark.parametrize("name", ["chat noir ĉ 猫.png", "with space.jpg", "ünïcode/dïr/ф.bmp"])
def test_non_ascii_and_space_names(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(CHELSEA, Path(name).suffix))
    assert load_image(path).shape == CHELSEA.shape


@pytest.mark.parametrize("ext", [".bmp", ".webp", ".tiff", ".png", ".jpg"])
def test_formats_decode(tmp_path, ext):
    img = load_image(write(tmp_path, "x" + ext, encode(CHELSEA, ext)))
    assert img.shape == CHELSEA.shape


# --- load_image: bad files --------------------------------------------------------------------


def assert_image_error(path, *fragments, **kwargs):
    with pytest.raises(ImageError) as info:
        load_image(path, **kwargs)
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert message.endswith(".") and message.count(". ") == 0, message  # one sentence
    return message


def test_empty_file(tmp_path):
    assert_image_error(write(tmp_path, "empty.jpg", b""), "empty")


def test_missing_file(tmp_path):
    assert_image_error(tmp_path / "nope.jpg", "No such file")


def test_directory_is_not_an_image(tmp_path):
    assert_image_error(tmp_path, "is a directory, not a regular file")


def test_truncated_jpeg(tmp_path):
    payload = encode(CHELSEA, ".jpg")
    for cut in (len(payload) // 2, len(payload) - 2):
        assert_image_error(write(tmp_path, f"cut{cut}.jpg", payload[:cut]), "truncated")


def test_truncated_png(tmp_path):
    payload = encode(CHELSEA, ".png")
    assert_image_error(write(tmp_path, "cut.png", payload[: len(payload) // 2]), "decode")


def test_text_file_named_jpg(tmp_path):
    path = write(tmp_path, "notes.jpg", b"this is not an image\n" * 10)
    assert_image_error(path, "not an image")


def test_unreadable_file(tmp_path):
    path = write(tmp_path, "secret.png", encode(CHELSEA, ".png"))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions do not stop reading")
        assert_image_error(path, "Permission denied")
    finally:
        path.chmod(0o644)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(width: int, height: int) -> bytes:
    """A valid 1-bit gray PNG of width x height: all zero rows compress to almost nothing."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def huge_png_bytes() -> bytes:
    return huge_png(20000, 20000)


def test_decompression_bomb_refused_fast(tmp_path, huge_png_bytes):
    path = write(tmp_path, "bomb.png", huge_png_bytes)
    assert path.stat().st_size < 2_000_000
    start = time.perf_counter()
    message = assert_image_error(path, "20000x20000", "megapixels")
    assert time.perf_counter() - start < 0.5
    assert "400 megapixels" in message


def test_max_pixels_applies_to_each_known_header(tmp_path):
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff"):
        path = write(tmp_path, "big" + ext, encode(CHELSEA, ext))
        assert_image_error(path, "451x300", max_pixels=100_000)
        assert load_image(path, max_pixels=451 * 300).shape == CHELSEA.shape


def test_max_pixels_checked_after_decoding_unknown_headers(tmp_path):
    path = write(tmp_path, "big.ppm", encode(CHELSEA, ".ppm"))
    assert header_size(path.read_bytes()) is None
    assert_image_error(path, "451x300", max_pixels=100_000)


def test_crafted_bmp_header_refused_without_decoding(tmp_path):
    header = b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 50000, -50000) + b"\x00" * 40
    assert header_size(header) == (50000, 50000)
    assert_image_error(write(tmp_path, "bomb.bmp", header), "50000x50000")


def test_default_limit_is_100_megapixels():
    assert DEFAULT_MAX_PIXELS == 100_000_000


# --- header_size ------------------------------------------------------------------------------


def test_header_size_of_opencv_encodings():
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff"):
        assert header_size(encode(CHELSEA, ext)) == (451, 300), ext
        assert header_size(encode(CAMERA[:100, :37], ext)) == (37, 100), ext


def test_header_size_of_pillow_encodings():
    image_module = pytest.importorskip("PIL.Image", reason="Pillow writes GIF and WebP variants")
    crop = CHELSEA[:40, :70]
    exif = image_module.Exif()
    exif[0x0112] = 1
    variants = {
        "GIF": ({}, None),
        "WEBP": ({"quality": 50}, b"VP8 "),
        "TIFF": ({"compression": "tiff_lzw"}, None),
    }
    for fmt, (options, chunk) in variants.items():
        buf = io.BytesIO()
        image_module.fromarray(crop).save(buf, fmt, **options)
        payload = buf.getvalue()
        if chunk is not None:
            assert payload[12:16] == chunk
        assert header_size(payload) == (70, 40), fmt
    buf = io.BytesIO()
    image_module.fromarray(crop).save(buf, "WEBP", quality=50, exif=exif.tobytes())
    assert buf.getvalue()[12:16] == b"VP8X"
    assert header_size(buf.getvalue()) == (70, 40)


def test_header_size_unknown_or_broken():
    assert header_size(b"hello world") is None
    assert header_size(b"\x89PNG\r\n\x1a\n") is None
    assert header_size(b"\xff\xd8\xff") is None
    assert header_size(b"RIFF\x00\x00\x00\x00WEBPVP8 ") is None


# --- preprocess_image -------------------------------------------------------------------------


def reference_preprocess(rgb: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """PaddleClas's deploy ops, written out plainly: resize, crop, normalise HWC, transpose."""
    flags = {
        "nearest": cv2.INTER_NEAREST,
        "bilinear": cv2.INTER_LINEAR,
        "bicubic": cv2.INTER_CUBIC,
        "area": cv2.INTER_AREA,
        "lanczos": cv2.INTER_LANCZOS4,
    }
    h, w = rgb.shape[:2]
    if cfg.resize_size is None:
        percent = float(cfg.resize_short) / min(w, h)
        size = (int(round(w * percent)), int(round(h * percent)))
    else:
        size = cfg.resize_size
    img = cv2.resize(rgb, size, interpolation=flags[cfg.interpolation])
    crop_w, crop_h = cfg.crop_size
    left, top = (img.shape[1] - crop_w) // 2, (img.shape[0] - crop_h) // 2
    return reference_normalize(img[top : top + crop_h, left : left + crop_w, :], cfg)


def reference_normalize(img: np.ndarray, cfg: PreprocessConfig = IMAGENET_PREPROCESS):
    mean = np.array(cfg.mean).reshape((1, 1, 3)).astype("float32")
    std = np.array(cfg.std).reshape((1, 1, 3)).astype("float32")
    img = (img.astype("float32") * np.float32(cfg.scale) - mean) / std
    return img.transpose((2, 0, 1))


CONFIGS = [
    IMAGENET_PREPROCESS,
    PreprocessConfig(interpolation="bicubic"),
    PreprocessConfig(resize_short=232, crop_size=(200, 180), interpolation="area"),
    PreprocessConfig(interpolation="lanczos", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    PreprocessConfig(resize_size=(300, 260), crop_size=(256, 256), interpolation="nearest"),
    PreprocessConfig(scale=1.0, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.interpolation}-{c.crop_size}")
@pytest.mark.parametrize(
    "image",
    [CHELSEA, COFFEE, ASTRONAUT, CHELSEA[:, :299]],
    ids=["chelsea", "coffee", "astronaut", "chelsea-odd"],
)
def test_matches_paddleclas_computation_exactly(cfg, image):
    tensor = preprocess_image(image, cfg)
    expected = reference_preprocess(image, cfg)
    assert tensor.dtype == np.float32 and tensor.flags.c_contiguous
    assert tensor.shape == expected.shape == (3, cfg.crop_size[1], cfg.crop_size[0])
    assert np.array_equal(tensor, expected)


def test_resize_rounds_half_to_even_like_python_round():
    # 1001 * 256/512 = 500.5: Python's round (PaddleClas) gives 500, not 501.
    assert resized_size(1001, 512, IMAGENET_PREPROCESS) == (500, 256)
    assert resized_size(1003, 512, IMAGENET_PREPROCESS) == (502, 256)  # 501.5 -> 502
    assert resized_size(512, 1001, IMAGENET_PREPROCESS) == (256, 500)
    assert resized_size(451, 300, IMAGENET_PREPROCESS) == (385, 256)


@pytest.mark.parametrize(
    "shape",
    [
        (1, 1),
        (1, 2),
        (2, 1),
        (224, 224),
        (225, 223),
        (3, 4000),
        (4000, 3),
        (1, 20000),
        (20000, 1),
        (7, 300),
        (300, 40000),
    ],
)
def test_any_aspect_ratio_gives_the_crop_shape(shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    tensor = preprocess_image(image)
    assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32
    assert np.isfinite(tensor).all()


def test_extreme_aspect_ratio_is_fast_and_close_to_the_full_resize():
    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(0, 256, (4, 400, 3), dtype=np.uint8), (40000, 3))
    start = time.perf_counter()
    tensor = preprocess_image(image)  # the full resize would be 3,413,333x256 pixels
    assert time.perf_counter() - start < 1.0
    # Same window computed the PaddleClas way on a narrower slice with the same scale.
    narrow = image[:, 20000 - 60 : 20000 + 60]
    scale = 256 / 3
    full = cv2.resize(narrow, (int(round(120 * scale)), 256))
    left = (full.shape[1] - 224) // 2
    expected = reference_normalize(full[16:240, left : left + 224])
    levels = np.abs(tensor - expected) * np.float32([0.229, 0.224, 0.225]).reshape(3, 1, 1) * 255
    assert levels.max() <= 3.0


def test_pil_backend_matches_pillow():
    image_module = pytest.importorskip("PIL.Image", reason="the pil backend needs Pillow")
    cfg = PreprocessConfig(interpolation="bicubic", backend="pil")
    tensor = preprocess_image(CHELSEA, cfg)
    resized = np.asarray(image_module.fromarray(CHELSEA).resize((385, 256), image_module.BICUBIC))
    left = (385 - 224) // 2
    expected = reference_normalize(resized[16:240, left : left + 224])
    assert np.array_equal(tensor, expected)


def test_preprocess_rejects_non_rgb_arrays():
    with pytest.raises(ValueError):
        preprocess_image(CAMERA)
    with pytest.raises(ValueError):
        preprocess_image(np.zeros((0, 5, 3), np.uint8))


def test_load_and_preprocess(tmp_path):
    path = write(tmp_path, "c.png", encode(CHELSEA, ".png"))
    assert np.array_equal(load_and_preprocess(path), preprocess_image(CHELSEA))


def test_make_batch():
    images = [preprocess_image(img) for img in (CHELSEA, COFFEE, ASTRONAUT)]
    batch = make_batch(images)
    assert batch.shape == (3, 3, 224, 224) and batch.dtype == np.float32
    assert batch.flags.c_contiguous
    assert np.array_equal(batch[1], images[1])
    with pytest.raises(ValueError):
        make_batch([])
    with pytest.raises(ValueError):
        make_batch([images[0], images[0][:, :100]])


# --- PreprocessConfig <-> PaddleClas transform_ops --------------------------------------------

PADDLECLAS_INFERENCE_CLS = """
PreProcess:
  transform_ops:
    - ResizeImage:
        resize_short: 256
    - CropImage:
        size: 224
    - NormalizeImage:
        scale: 0.00392157
        mean: [0.485, 0.456, 0.406]
        std: [0.229, 0.224, 0.225]
        order: ''
    - ToCHWImage:
"""


def test_parses_paddleclas_inference_config():
    yaml = pytest.importorskip("yaml")
    ops = yaml.safe_load(PADDLECLAS_INFERENCE_CLS)["PreProcess"]["transform_ops"]
    cfg = PreprocessConfig.from_paddleclas_ops(ops)
    assert cfg.resize_short == 256 and cfg.crop_size == (224, 224)
    assert cfg.interpolation == "bilinear" and cfg.backend == "cv2"
    assert cfg.scale == pytest.approx(1 / 255, rel=1e-5)
    assert cfg.mean == (0.485, 0.456, 0.406) and cfg.std == (0.229, 0.224, 0.225)


def test_paddleclas_ops_roundtrip_through_yaml():
    yaml = pytest.importorskip("yaml")
    for cfg in CONFIGS + [PreprocessConfig(backend="pil", interpolation="bicubic")]:
        ops = yaml.safe_load(yaml.safe_dump(cfg.to_paddleclas_ops()))
        assert PreprocessConfig.from_paddleclas_ops(ops) == cfg


def test_paddleclas_variants():
    ops = [
        {"DecodeImage": {"to_rgb": True, "channel_first": False}},
        {"ResizeImage": {"resize_short": 256, "interpolation": "bicubic", "backend": "pil"}},
        {"CropImage": {"size": [224, 192]}},
        {
            "NormalizeImage": {
                "scale": "1.0/255.0",
                "mean": [0.5] * 3,
                "std": [0.5] * 3,
                "order": "",
                "channel_num": 3,
            }
        },
        {"ToCHWImage": None},
    ]
    cfg = PreprocessConfig.from_paddleclas_ops(ops)
    assert (cfg.backend, cfg.interpolation, cfg.crop_size) == ("pil", "bicubic", (224, 192))
    assert cfg.scale == 1 / 255
    fixed = PreprocessConfig.from_paddleclas_ops(
        [
            {"ResizeImage": {"size": [192, 48]}},
            {"NormalizeImage": {"order": ""}},
            {"ToCHWImage": {}},
        ]
    )
    assert fixed.resize_size == (192, 48) and fixed.crop_size == (192, 48)
    assert preprocess_image(CHELSEA, fixed).shape == (3, 48, 192)


@pytest.mark.parametrize(
    ("ops", "fragment"),
    [
        ([{"RandCropImage": {"size": 224}}], "RandCropImage"),
        ([{"ResizeImage": {"resize_short": 256, "colour": 1}}], "colour"),
        ([{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}}], "ToCHWImage"),
        ([{"CropImage": {"size": 224}}, {"ToCHWImage": None}], "ResizeImage"),
        ([{"ResizeImage": {"resize_short": 256}}, {"ToCHWImage": None}], "no CropImage"),
        (
            [
                {"ResizeImage": {"resize_short": 256}},
                {"CropImage": {"size": 300}},
                {"ToCHWImage": None},
            ],
            "larger",
        ),
        ([{"ResizeImage": {"resize_short": 256, "interpolation": "random"}}], "random"),
        (
            [
                {"ResizeImage": {"resize_short": 256}},
                {"CropImage": {"size": 224}},
                {"NormalizeImage": {"scale": "__import__('os')", "order": ""}},
                {"ToCHWImage": None},
            ],
            "scale",
        ),
        (
            [
                {"ResizeImage": {"resize_short": 256}},
                {"CropImage": {"size": 224}},
                {"NormalizeImage": {}},
                {"ToCHWImage": None},
            ],
            "order",
        ),
        ("ResizeImage", "list"),
        ([{"ResizeImage": {}, "CropImage": {}}], "one-key"),
    ],
)
def test_bad_paddleclas_ops_raise_clear_errors(ops, fragment):
    with pytest.raises(PreprocessConfigError, match=fragment) as info:
        PreprocessConfig.from_paddleclas_ops(ops)
    # A ConfigError for the CLI, and a ValueError for file parsers that add the file name.
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)


def test_parse_scale():
    assert parse_scale("1.0/255.0") == 1.0 / 255.0
    assert parse_scale(" 1 / 255 ") == 1 / 255
    assert parse_scale(0.5) == 0.5
    for bad in ("1/0", "abs(1)", "x", True, None):
        with pytest.raises(PreprocessConfigError):
            parse_scale(bad)


def test_config_validation():
    with pytest.raises(PreprocessConfigError):
        PreprocessConfig(interpolation="cubic")
    with pytest.raises(PreprocessConfigError):
        PreprocessConfig(std=(0.2, 0.0, 0.2))
    with pytest.raises(PreprocessConfigError):
        PreprocessConfig(resize_short=200, crop_size=(224, 224))
    cfg = PreprocessConfig(crop_size=[224, 224], mean=[0.5, 0.5, 0.5])  # lists from YAML
    assert cfg.crop_size == (224, 224) and hash(cfg) == hash(
        PreprocessConfig(crop_size=(224, 224), mean=(0.5, 0.5, 0.5))
    )


# --- fuzzing ----------------------------------------------------------------------------------


def _seed_files() -> list[bytes]:
    small = CHELSEA[100:116, 200:224]
    seeds = [encode(small, ext) for ext in (".jpg", ".png", ".bmp", ".webp", ".tiff")]
    seeds.append(encode(CAMERA[:9, :13], ".png"))
    seeds.append(encode(small.astype(np.uint16) * 257, ".png"))
    return seeds


def test_fuzzed_bytes_give_a_tensor_or_image_error(tmp_path):
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    seeds = _seed_files()
    path = tmp_path / "fuzz.img"

    @st.composite
    def image_bytes(draw):
        if draw(st.integers(0, 9)) == 0:
            return draw(st.binary(max_size=512))
        payload = bytearray(draw(st.sampled_from(seeds)))
        for _ in range(draw(st.integers(1, 4))):
            action = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
            spot = draw(st.integers(0, max(len(payload) - 1, 0)))
            if action == "flip" and payload:
                payload[spot] = draw(st.integers(0, 255))
            elif action == "cut":
                del payload[spot:]
            elif action == "insert":
                payload[spot:spot] = draw(st.binary(min_size=1, max_size=16))
            elif payload:  # scribble over the header, where sizes live
                payload[min(spot, 40)] = draw(st.integers(0, 255))
        return bytes(payload)

    @hypothesis.settings(
        max_examples=200,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(image_bytes())
    def check(payload):
        path.write_bytes(payload)
        try:
            tensor = preprocess_image(load_image(path, max_pixels=4_000_000))
        except ImageError as exc:
            assert str(path) in str(exc)
            return
        assert tensor.shape == (3, 224, 224) and tensor.dtype == np.float32
        assert np.isfinite(tensor).all()

    check()


def test_permission_error_message(tmp_path, monkeypatch):
    # Stands in for chmod 000 where the tests run as root (root reads anything).
    import ppinfer.io.safe_io as safe_io

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(safe_io.os, "open", refuse)
    (tmp_path / "locked.jpg").write_bytes(b"\xff\xd8")
    assert_image_error(tmp_path / "locked.jpg", "Cannot read", "Permission denied")


def test_special_file_refused(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer, so opening for read won't block
    try:
        assert_image_error(fifo, "not a regular file")
    finally:
        os.close(fd)
