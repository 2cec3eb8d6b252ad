"""Image limits, apart from the decoder so they can be set before OpenCV is imported.

OpenCV reads ``OPENCV_IO_MAX_IMAGE_PIXELS`` once, when ``cv2`` is imported: its own check then
backs up ppinfer's header check, so no header trick (a size tag given twice, a format ppinfer
does not parse) gets a bigger decode than ``--max-pixels`` allows.
"""

from __future__ import annotations

import os

DEFAULT_MAX_PIXELS = 100_000_000
"""Images with more pixels than this are refused before decoding (decompression bombs)."""
DEFAULT_MAX_IMAGE_BYTES = 512 << 20
"""Image files larger than this are refused before reading (a 100-megapixel BMP is 300 MB)."""


def set_decoder_pixel_limit(max_pixels: int = DEFAULT_MAX_PIXELS, *, force: bool = True) -> None:
    """Give OpenCV the pixel limit ``max_pixels``. Effective only before ``cv2`` is imported:
    the CLI calls it first thing; ``force=False`` keeps a value the user's environment set."""
    if force or "OPENCV_IO_MAX_IMAGE_PIXELS" not in os.environ:
        os.environ["OPENCV_IO_MAX_IMAGE_PIXELS"] = str(max_pixels)
