"""What a model needs done to an image before inference. No heavy imports here."""

from __future__ import annotations

from dataclasses import dataclass

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "lanczos")


@dataclass(frozen=True)
class PreprocessConfig:
    """PaddleClas's eval transform: resize short side, center crop, ``(x * scale - mean) / std``, CHW.

    Images are RGB after decoding. Defaults are PaddleClas's ImageNet ones.
    """

    resize_short: int = 256
    crop_size: tuple[int, int] = (224, 224)  # (width, height), as PaddleClas's CropImage size
    interpolation: str = "bilinear"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
            )


IMAGENET_PREPROCESS = PreprocessConfig()
