"""Image file -> HWC uint8 RGB array, decoded as PaddleClas's deploy code does.

A decode equivalent to PaddleClas's ``cv2.imdecode(data, IMREAD_COLOR)`` for 8-bit images
(EXIF orientation applied, alpha dropped, CMYK converted), keeping 16-bit/float depth and gray
so they are converted here (see _to_uint8). Images over a pixel limit are refused from their
header before decoding. OpenCV releases the GIL in imdecode and cvtColor, so callers may run
``load_image`` in a thread pool.
"""

from __future__ import annotations

import os

from ppinfer.pipeline.limits import (
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_PIXELS,
    set_decoder_pixel_limit,
)

# OpenCV's own limit, read when cv2 is imported (the CLI sets it from --max-pixels earlier).
set_decoder_pixel_limit(force=False)

import numpy as np  # noqa: E402

from ppinfer.errors import ImageError  # noqa: E402
from ppinfer.io.safe_io import read_regular_file  # noqa: E402
from ppinfer.pipeline.image_headers import header_size, jpeg_complete  # noqa: E402
from ppinfer.pipeline.opencv import import_cv2  # noqa: E402

cv2 = import_cv2()

__all__ = ["DEFAULT_MAX_IMAGE_BYTES", "DEFAULT_MAX_PIXELS", "decode_image_bytes", "load_image"]


def _silence_opencv() -> None:
    """OpenCV reports corrupt files on stderr ("libpng error: ..."); ImageError says it in one
    line. ``cv2.utils.logging`` is missing from some builds (4.10-4.12 among them)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    elif hasattr(cv2, "setLogLevel"):
        cv2.setLogLevel(0)  # 0 = LOG_LEVEL_SILENT


_silence_opencv()

# Decode like PaddleClas (cv2.imdecode(data, IMREAD_COLOR)) -- EXIF orientation applied, alpha
# dropped, CMYK converted -- but keep 16-bit/float depth and gray, so they are converted here.
_DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> np.ndarray:
    """Read an image file as an HWC uint8 RGB array.

    Gray images become three equal channels; alpha is dropped (not composited), as PaddleClas's
    decode does; 16-bit and other integer images are scaled to 0..255 (rounded); float images
    are taken as 0..1 and clipped. Raises :class:`ImageError` (one sentence naming the file)
    for anything unreadable, including images over ``max_pixels``, which are refused from the
    file header before any decoding, files over ``max_bytes`` (refused before reading), and
    anything but a regular file (a FIFO would block ``open()`` forever).
    """
    name = os.fspath(path)
    data = read_regular_file(name, max_bytes, ImageError,
                             limit_hint="change the limit with --max-image-bytes")
    return decode_image_bytes(data, name, max_pixels)


def decode_image_bytes(data: bytes, name: str,
                       max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An encoded image already in memory (``name`` says what it is in error sentences, e.g.
    "the uploaded image") as an HWC uint8 RGB array, with :func:`load_image`'s checks."""
    if not data:
        raise ImageError(f"{name} is empty (0 bytes).")
    size = header_size(data)
    if size is not None:
        _check_pixels(name, size, max_pixels)
        if data[:2] == b"\xff\xd8" and not jpeg_complete(data):
            raise ImageError(f"{name} is truncated: its JPEG data ends before the end marker.")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), _DECODE_FLAGS)
    except cv2.error:
        img = None
    except MemoryError:
        raise ImageError(f"{name} is too large to decode in the available memory.") from None
    if img is None or img.size == 0:
        raise ImageError(f"{name} is not an image OpenCV can decode (unknown format or corrupt).")
    _check_pixels(name, (img.shape[1], img.shape[0]), max_pixels)
    return _to_rgb8(img)




def _check_pixels(name: str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has an invalid header: it says {width}x{height} pixels.")
    if width * height > max_pixels:
        raise ImageError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.3g} megapixels), "
            f"over the limit of {max_pixels / 1e6:g} megapixels."
        )


def _to_rgb8(img: np.ndarray) -> np.ndarray:
    """Any decoded array (gray/BGR/BGRA; 8/16-bit, other ints, float) -> HWC uint8 RGB."""
    img = _to_uint8(img)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    channels = img.shape[2]
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if channels == 4:  # IMREAD_ANYCOLOR already drops alpha; kept for other decoders
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(np.ascontiguousarray(img[:, :, 0]), cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(np.ascontiguousarray(img[:, :, :3]), cv2.COLOR_BGR2RGB)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        # Scaled and rounded (v * 255 / 65535). PaddleClas's IMREAD_COLOR instead shifts
        # (v >> 8), so 16-bit images may differ from it by one level.
        return cv2.convertScaleAbs(img, alpha=255.0 / 65535.0)
    if np.issubdtype(img.dtype, np.integer):
        top = float(np.iinfo(img.dtype).max)
        scaled = np.clip(img, 0, None).astype(np.float64) * (255.0 / top)
        return np.rint(scaled).astype(np.uint8)
    # Floating point (TIFF, EXR, HDR): taken as 0..1; out-of-range values clipped, NaN -> 0.
    as_float = np.nan_to_num(img.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(as_float, 0.0, 1.0) * 255.0).astype(np.uint8)
