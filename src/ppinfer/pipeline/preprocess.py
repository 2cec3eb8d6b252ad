"""Image file -> RGB array -> normalised CHW float32 tensor, as PaddleClas's deploy code does it.

Numerically this follows PaddleClas ``deploy/python/preprocess.py`` (DecodeImage, ResizeImage,
CropImage, NormalizeImage, ToCHWImage): a decode equivalent to its ``IMREAD_COLOR`` for 8-bit
images, the same resize-size rounding, the same crop offsets, the same float32 arithmetic in
the same order, so the tensors are bit-identical for 8-bit images. Where ppinfer differs, a
comment says so (16-bit images in _to_uint8; extreme aspect ratios in _resize_window).

OpenCV releases the GIL in imdecode/resize/cvtColor, so callers may run ``load_image`` and
``preprocess_image`` in a thread pool.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
import struct
from collections.abc import Sequence

import cv2
import numpy as np

from ppinfer.errors import ConfigError, ImageError
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig

# OpenCV reports corrupt files on stderr ("libpng error: ..."); ImageError says it in one line.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels than this are refused before decoding (decompression bombs)."""

# Decode like PaddleClas (cv2.imdecode(data, IMREAD_COLOR)) -- EXIF orientation applied, alpha
# dropped, CMYK converted -- but keep 16-bit/float depth and gray, so they are converted here.
_DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR

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


# --- reading ----------------------------------------------------------------------------------


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as an HWC uint8 RGB array.

    Gray images become three equal channels; alpha is dropped (not composited), as PaddleClas's
    decode does; 16-bit and other integer images are scaled to 0..255 (rounded); float images
    are taken as 0..1 and clipped. Raises :class:`ImageError` (one sentence naming the file)
    for anything unreadable, including images over ``max_pixels``, which are refused from the
    file header before any decoding.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # a FIFO or device: no end
                raise ImageError(f"{name} is not a regular file.")
            data = fh.read()
    except OSError as exc:
        raise ImageError(f"Cannot read {name}: {exc.strerror or exc}.") from None
    if not data:
        raise ImageError(f"{name} is empty (0 bytes).")
    size = header_size(data)
    if size is not None:
        _check_pixels(name, size, max_pixels)
        if data[:2] == b"\xff\xd8" and not _jpeg_complete(data):
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


def load_and_preprocess(
    path: str | os.PathLike[str],
    cfg: PreprocessConfig = IMAGENET_PREPROCESS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """``preprocess_image(load_image(path))``: one unit of work for a thread pool."""
    return preprocess_image(load_image(path, max_pixels), cfg)


def _check_pixels(name: str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has an invalid header: it says {width}x{height} pixels.")
    if width * height > max_pixels:
        raise ImageError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
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


# --- headers ----------------------------------------------------------------------------------


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a PNG, JPEG, GIF, BMP, WebP or TIFF header, without decoding.

    None when the format is not one of these or its header cannot be parsed; OpenCV decides then.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", data[6:10])
        if data[:2] == b"BM":
            return _bmp_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _bmp_size(data: bytes) -> tuple[int, int]:
    (dib_size,) = struct.unpack("<I", data[14:18])
    if dib_size == 12:  # BITMAPCOREHEADER: 16-bit unsigned sizes
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # negative height: rows stored top-down


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    endian = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", data[4:8])
    (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
    found: dict[int, int] = {}
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        tag, kind = struct.unpack(endian + "HH", data[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            fmt = "H" if kind == 3 else "I"
            (found[tag],) = struct.unpack_from(endian + fmt, data, entry + 8)
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A marker inside entropy-coded data: 0xFF not followed by stuffing (00), RSTn (D0-D7) or fill.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_markers(data: bytes):
    """Yield (marker, offset) through a JPEG, skipping segment bodies and entropy-coded data."""
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:  # stray bytes before a marker: libjpeg skips them too
            i = data.find(b"\xff", i)
            if i < 0:
                return
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # standalone markers, no length
            i += 2
            continue
        yield marker, i
        if marker == 0xD9 or i + 4 > n:
            return
        i += 2 + ((data[i + 2] << 8) | data[i + 3])
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next marker
            found = _JPEG_MARKER.search(data, i)
            if found is None:
                return
            i = found.start()


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    for marker, i in _jpeg_markers(data):
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return (width, height) if height else None  # height 0: set later by a DNL marker
        if marker == 0xDA:
            return None
    return None


def _jpeg_complete(data: bytes) -> bool:
    """True when the JPEG reaches its end-of-image marker (OpenCV 4 decodes truncated files)."""
    return any(marker == 0xD9 for marker, _ in _jpeg_markers(data))


# --- tensor -----------------------------------------------------------------------------------


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
