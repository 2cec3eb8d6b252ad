"""Make what BENCHMARKS.md measures: real photos as JPEGs and two exported models.

    python benchmarks/prepare.py OUT_DIR [--format pir|legacy] [--also-legacy]

Writes ``OUT_DIR/photos/*.jpg`` (scikit-image's sample images, written as JPEGs at quality 92)
and ``OUT_DIR/models/{ResNet50_vd,EfficientNet_lite0}[-legacy]``:

- ResNet50_vd has no pretrained weights here: its checkpoint is made by Paddle itself (the
  static program's startup initialisation, seed 0, saved with ``paddle.static.io.save_vars``),
  then exported with ``ppinfer.export.export_model``. Speed does not depend on the weights.
- EfficientNet_lite0 is ppinfer's built-in ImageNet model (real weights), exported the same way.

Existing outputs are kept, so a second run is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# scikit-image's sample images; the 3-tuple ones (stereo pairs) give their left image.
SAMPLES = (
    "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "stereo_motorcycle", "camera", "moon", "grass", "gravel", "brick", "clock",
    "coins", "page", "text", "horse", "colorwheel", "logo",
)


def write_photos(out: Path) -> list[Path]:
    import cv2
    import numpy as np
    from skimage import data

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SAMPLES:
        path = out / f"{name}.jpg"
        if not path.exists():
            try:
                image = getattr(data, name)()
            except (AttributeError, ImportError, OSError):
                continue  # not in this scikit-image, or needs pooch (a download)
            image = np.asarray(image[0] if isinstance(image, tuple) else image)
            if image.dtype == bool:
                image = image.astype(np.uint8) * 255
            if image.ndim == 3:
                image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        written.append(path)
    return written


def random_resnet50_vd_checkpoint(out: Path, name: str = "ResNet50_vd") -> Path:
    """A persistable checkpoint of ``name`` (default ResNet50_vd) with Paddle's own random
    initialisation."""
    import paddle

    from ppinfer.models import get_model
    from ppinfer.models.program import build_static_model

    if out.is_dir() and any(out.iterdir()):
        return out
    paddle.seed(0)
    model = build_static_model(get_model(name), 1000, ir="legacy")
    names = set(model.expected)
    with model.guard():
        paddle.static.io.save_vars(model.executor, str(out), model.program,
                                   predicate=lambda var: var.name in names)
    return out


def export(name: str, checkpoint: Path, out: Path, fmt: str) -> Path:
    from ppinfer.export import export_model

    if not out.is_dir():
        result = export_model(name, checkpoint, out, fmt=fmt)
        print(f"exported {name} ({fmt}) to {out} in {result.seconds:.1f}s", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--format", default=None, help="export format (default: native)")
    parser.add_argument("--mobilenet", action="store_true",
                        help="also MobileNetV3_large_x1_0 (random weights), a depthwise network")
    parser.add_argument("--also-legacy", action="store_true",
                        help="also export .pdmodel copies (suffix -legacy), to compare IRs")
    args = parser.parse_args()

    from ppinfer.models.efficientnet import lite0_weights_path
    from ppinfer.runtime.paddle_env import paddle_env

    fmt = args.format or paddle_env().native_format
    photos = write_photos(args.out / "photos")
    print(f"{len(photos)} photos in {args.out / 'photos'}", file=sys.stderr)
    checkpoints = {
        "ResNet50_vd": random_resnet50_vd_checkpoint(args.out / "checkpoints" / "ResNet50_vd"),
        "EfficientNet_lite0": lite0_weights_path(),
    }
    if args.mobilenet:
        name = "MobileNetV3_large_x1_0"
        checkpoints[name] = random_resnet50_vd_checkpoint(args.out / "checkpoints" / name, name)
    formats = [fmt] + (["legacy"] if args.also_legacy and fmt != "legacy" else [])
    for name, checkpoint in checkpoints.items():
        for f in formats:
            suffix = "" if f == fmt else f"-{f}"
            print(export(name, Path(checkpoint), args.out / "models" / f"{name}{suffix}", f))


if __name__ == "__main__":
    main()
