"""int8 against fp32 on many held-out views: BENCHMARKS.md's "int8 vs fp32", agreement.

    python benchmarks/int8_agreement.py OUT_DIR [--engines analysis,openvino,onnxruntime]

Writes 224 views of seven scikit-image photos of things ImageNet has classes for (each whole,
and crops of 85%, 70% and 55% of it at its corners and centre, each also mirrored), quantizes
the built-in EfficientNet-Lite0 for each engine with ``ppinfer quantize``'s own code, half the
views calibrating (64 of them) and half held out, and prints per engine: top-1 agreement on the
held-out views, how many of those that differ are near ties in fp32, the largest score
difference, and the mean KL divergence of the int8 scores from fp32's (which moves with every
change, where agreement moves one image at a time).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

PHOTOS = ("chelsea", "coffee", "camera", "rocket", "clock", "astronaut", "stereo_motorcycle")
SCALES = (1.0, 0.85, 0.7, 0.55)


def write_views(out: Path) -> Path:
    """The views as JPEGs in ``out`` (written once)."""
    import cv2
    from skimage import data

    out.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        image = getattr(data, name)()
        image = image[0] if isinstance(image, tuple) else image  # the motorcycle's left view
        image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
        h, w = image.shape[:2]
        for scale in SCALES:
            ch, cw = int(h * scale), int(w * scale)
            corners = [(0, 0)] if scale == 1.0 else [
                (0, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2), (0, w - cw), (h - ch, 0)]
            for y, x in corners:
                crop = image[y:y + ch, x:x + cw]
                for flip in (False, True):
                    view = np.ascontiguousarray(crop[:, ::-1] if flip else crop)
                    cv2.imwrite(str(out / f"{name}-{scale}-{y}-{x}-{int(flip)}.jpg"),
                                cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
    return out


def measure(views: Path, out: Path, engine: str) -> str:
    """One engine's line: quantize, then compare on the held-out half."""
    from ppinfer.api.builtin_model import default_model_dir
    from ppinfer.modelfiles.source import resolve_source
    from ppinfer.quantization import calibration as calib
    from ppinfer.quantization.quantize import quantize_model
    from ppinfer.quantization.verify import scores

    model = default_model_dir()
    result = quantize_model(model, [views], out / f"lite0-int8-{engine}", engine=engine,
                            samples=64, held_out_share=0.5, force=True)
    source = resolve_source(model=str(model), prefer="legacy")
    held = calib.load(calib.split_images([views], 64, 0.5), source.preprocess).held_out_batch
    fp32 = scores(engine, source, "fp32", held)
    int8 = scores(engine, resolve_source(model=str(result.output), prefer="legacy"), "int8", held)
    kl = float(np.mean(np.sum(fp32 * np.log((fp32 + 1e-9) / (int8 + 1e-9)), axis=1)))
    a, ver = result.verification.agreement, result.verification
    return (f"{engine}: top-1 {a.top1_agree}/{a.images} ({100 * a.top1_rate:.1f}%), "
            f"{a.images - a.top1_agree - ver.near_ties} differ where fp32 is decided, "
            f"largest score difference {a.max_score_diff:.3f}, mean KL {kl:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--engines", default="analysis,openvino,onnxruntime")
    args = parser.parse_args()
    views = write_views(args.out / "views")
    for engine in args.engines.split(","):
        print(measure(views, args.out, engine), flush=True)


if __name__ == "__main__":
    main()
