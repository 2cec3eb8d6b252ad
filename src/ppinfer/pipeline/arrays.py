"""Images given as NumPy arrays (the Python API): checked here, then preprocessed like files.

An array stands in the input list where a file would; its result is named ``<array N>`` (N its
position in the list the caller passed), and a wrong array gets an error sentence in its place,
as an unreadable file does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppinfer.errors import ImageError


@dataclass(frozen=True)
class ArrayItem:
    """One H x W x 3 uint8 RGB image held in memory; ``path`` is the name its result gets."""

    path: str
    image: np.ndarray
    error: str | None = None

    def load(self, max_pixels: int) -> np.ndarray:
        """The image, checked: H x W x 3, uint8, not empty, at most ``max_pixels`` pixels."""
        return checked_rgb(self.path, self.image, max_pixels)


def array_name(position: int) -> str:
    return f"<array {position}>"


def checked_rgb(name: str, image: np.ndarray, max_pixels: int) -> np.ndarray:
    """``image`` as a contiguous H x W x 3 uint8 array, or an :class:`ImageError` saying why not."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(
            f"{name} is shaped {tuple(image.shape)}, not H x W x 3: pass an RGB image "
            "(for gray, np.stack([g, g, g], axis=-1); for RGBA, drop the alpha with a[..., :3])."
        )
    if image.dtype != np.uint8:
        raise ImageError(
            f"{name} holds {image.dtype} values, not uint8: pass 0-255 values as "
            "np.uint8 (for 0-1 floats, (a * 255).round().astype(np.uint8))."
        )
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ImageError(f"{name} is empty ({height}x{width} pixels).")
    if height * width > max_pixels:
        raise ImageError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"over the limit of {max_pixels / 1e6:g} megapixels."
        )
    return np.ascontiguousarray(image)
