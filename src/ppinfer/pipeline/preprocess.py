"""HWC RGB array -> normalised CHW float32 tensor, as PaddleClas's deploy code does it.

Numerically this follows PaddleClas ``deploy/python/preprocess.py`` (ResizeImage, CropImage,
NormalizeImage, ToCHWImage): the same resize-size rounding, the same crop offsets, the same
float32 arithmetic in the same order, so the tensors are bit-identical for 8-bit images (decoding
is ``ppinfer.pipeline.decode``). Where ppinfer differs, a comment says so (extreme aspect ratios
in _resize_window).

OpenCV releases the GIL in resize, so callers may run ``preprocess_image`` in a thread pool.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ppinfer.errors import ConfigError, ImageError
from ppinfer.pipeline.decode import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS, load_image
from ppinfer.pipeline.opencv import import_cv2
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig

cv2 = import_cv2()

# Above this many pixels, the intermediate resized image of PaddleClas's resize-then-crop is not
# built; only the crop window is computed (see _resize_window).
_MAX_RESIZED_PIXELS = 1 << 24

_CV2_INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}

def load_and_preprocess(
    path: str | os.PathLike[str],
    cfg: PreprocessConfig = IMAGENET_PREPROCESS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> np.ndarray:
    """``preprocess_image(load_image(path))``: one unit of work for a thread pool."""
    return preprocess_image(load_image(path, max_pixels, max_bytes), cfg)


@dataclass
class Loaded:
    """One image after decode + preprocess: its 1 x C x H x W tensor, or why there is none."""

    tensor: np.ndarray | None = None
    error: str | None = None
    seconds: float = 0.0


def load_one(path: str, cfg: PreprocessConfig, max_pixels: int, max_bytes: int) -> Loaded:
    """:func:`load_and_preprocess` as a batch of one, an unreadable image's sentence kept."""
    start = time.perf_counter()
    try:
        tensor = make_batch([load_and_preprocess(path, cfg, max_pixels, max_bytes)])
    except ImageError as exc:
        return Loaded(error=str(exc), seconds=time.perf_counter() - start)
    return Loaded(tensor=tensor, seconds=time.perf_counter() - start)


def resized_size(width: int, height: int, cfg: PreprocessConfig) -> tuple[int, int]:
    """(width, height) after ResizeImage, rounded as PaddleClas does: Python ``round``, which
    rounds halves to even."""
    if cfg.resize_size is not None:
        return cfg.resize_size
    percent = float(cfg.resize_short) / min(width, height)
    return int(round(width * percent)), int(round(height * percent))


def preprocess_image(rgb: np.ndarray, cfg: PreprocessConfig = IMAGENET_PREPROCESS) -> np.ndarray:
    """HWC RGB image -> contiguous CHW float32: resize, center crop, ``(x * scale - mean) / std``.

    The crop offsets are PaddleClas CropImage's: ``(resized - crop) // 2``.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"preprocess_image needs an HxWx3 RGB array, not shape {rgb.shape}")
    img_h, img_w = rgb.shape[:2]
    new_w, new_h = resized_size(img_w, img_h, cfg)
    crop_w, crop_h = cfg.crop_size
    window = ((new_w - crop_w) // 2, (new_h - crop_h) // 2, crop_w, crop_h)
    if new_w * new_h > max(_MAX_RESIZED_PIXELS, img_w * img_h):
        crop = _resize_window(rgb, (new_w, new_h), window, cfg)
    else:
        resized = _resize(rgb, (new_w, new_h), cfg)
        x0, y0 = window[:2]
        crop = resized[y0 : y0 + crop_h, x0 : x0 + crop_w]
    return _normalize_chw(crop, cfg)


def make_batch(images: Sequence[np.ndarray]) -> np.ndarray:
    """Stack CHW images into one contiguous NCHW float32 array."""
    if len(images) == 0:
        raise ValueError("make_batch needs at least one image")
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"make_batch needs images of one shape, got {sorted(shapes)}")
    batch = np.empty((len(images), *images[0].shape), dtype=np.float32)
    for index, image in enumerate(images):
        batch[index] = image
    return batch


def _resize(rgb: np.ndarray, size: tuple[int, int], cfg: PreprocessConfig) -> np.ndarray:
    if size == (rgb.shape[1], rgb.shape[0]):
        return rgb  # cv2.resize to the same size is a plain copy
    if cfg.backend == "pil":
        return _pil_resize(rgb, size, cfg.interpolation)
    return cv2.resize(rgb, size, interpolation=_CV2_INTERPOLATION[cfg.interpolation])


def _resize_window(
    rgb: np.ndarray,
    size: tuple[int, int],
    window: tuple[int, int, int, int],
    cfg: PreprocessConfig,
) -> np.ndarray:
    """Only the crop window of the resized image, for extreme aspect ratios.

    PaddleClas builds the whole resized image first: a 20000x2 image at resize_short 256 would
    be 2,560,000x256 pixels. Here only the window is sampled, with the same pixel-centre
    mapping as cv2.resize (or Pillow's ``box``, which is exact). With OpenCV, values can differ
    from the full resize by a few levels in 255: cv2.remap quantises sample positions to 1/32
    pixel where cv2.resize computes exact weights.
    """
    img_h, img_w = rgb.shape[:2]
    x0, y0, crop_w, crop_h = window
    scale_x, scale_y = img_w / size[0], img_h / size[1]  # source pixels per output pixel
    margin = 5  # taps beyond the window's source span: Lanczos4 reads 4 each side
    rx0 = max(0, math.floor(x0 * scale_x) - margin)
    rx1 = min(img_w, math.ceil((x0 + crop_w) * scale_x) + margin)
    ry0 = max(0, math.floor(y0 * scale_y) - margin)
    ry1 = min(img_h, math.ceil((y0 + crop_h) * scale_y) + margin)
    region = np.ascontiguousarray(rgb[ry0:ry1, rx0:rx1])
    if cfg.backend == "pil":
        box = (
            x0 * scale_x - rx0,
            y0 * scale_y - ry0,
            (x0 + crop_w) * scale_x - rx0,
            (y0 + crop_h) * scale_y - ry0,
        )
        return _pil_resize(region, (crop_w, crop_h), cfg.interpolation, box)
    flag = _CV2_INTERPOLATION[cfg.interpolation]
    map_x = _cv2_source_coords(x0, crop_w, scale_x, flag) - rx0
    map_y = _cv2_source_coords(y0, crop_h, scale_y, flag) - ry0
    maps = np.meshgrid(map_x.astype(np.float32), map_y.astype(np.float32))
    return cv2.remap(
        region,
        *maps,
        cv2.INTER_LINEAR if flag == cv2.INTER_AREA else flag,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _cv2_source_coords(start: int, count: int, scale: float, flag: int) -> np.ndarray:
    """Where cv2.resize samples the source for output pixels start..start+count-1 (upscaling)."""
    out = np.arange(start, start + count, dtype=np.float64)
    if flag == cv2.INTER_NEAREST:
        return np.floor(out * scale)
    if flag == cv2.INTER_AREA:  # cv2's area mode when enlarging: a sharpened linear blend
        left = np.floor(out * scale)
        frac = (out + 1) - (left + 1) / scale
        return left + np.where(frac <= 0, 0.0, frac - np.floor(frac))
    return (out + 0.5) * scale - 0.5  # pixel centres, as cv2.resize's linear/cubic/lanczos


def _pil_resize(
    rgb: np.ndarray,
    size: tuple[int, int],
    interpolation: str,
    box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError(
            "This model resizes with Pillow (ResizeImage backend: pil) but Pillow is not "
            "installed: pip install Pillow."
        ) from None
    resample = {
        "nearest": Image.NEAREST,
        "bilinear": Image.BILINEAR,
        "bicubic": Image.BICUBIC,
        "area": Image.BOX,
        "lanczos": Image.LANCZOS,
    }[interpolation]
    return np.asarray(Image.fromarray(rgb).resize(size, resample, box=box))


@functools.lru_cache(maxsize=32)
def _norm_constants(cfg: PreprocessConfig) -> tuple[np.float32, np.ndarray, np.ndarray]:
    # float32 throughout, as PaddleClas NormalizeImage: np.float32(scale), float32 mean/std.
    mean = np.asarray(cfg.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(cfg.std, dtype=np.float32).reshape(3, 1, 1)
    return np.float32(cfg.scale), mean, std


def _normalize_chw(crop: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    # The same float32 operations per element as PaddleClas's HWC (x * scale - mean) / std, so
    # the results are bit-identical; done in place on the CHW copy to skip temporaries.
    scale, mean, std = _norm_constants(cfg)
    chw = np.empty((3, crop.shape[0], crop.shape[1]), dtype=np.float32)
    np.copyto(chw, crop.transpose(2, 0, 1), casting="unsafe")
    chw *= scale
    chw -= mean
    chw /= std
    return chw
