"""Top-1 agreement between fp32 and a lower precision (default bf16) on real photos.

    python benchmarks/precision_agreement.py [--model DIR] [--precision bf16] [--variants 6]

Photos: the colour samples shipped inside scikit-image (astronaut, chelsea, coffee, ...),
each also flipped and cropped a few ways so the set is larger than the handful of originals.
Prints per-photo top-1 for both precisions, the agreement rate, and the largest score
difference. Not a test: the numbers go into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "retina",
          "hubble_deep_field", "immunohistochemistry", "colorwheel")


def photo_set(variants: int) -> list[tuple[str, np.ndarray]]:
    from skimage import data

    out = []
    for name in PHOTOS:
        loader = getattr(data, name, None)
        if loader is None:
            continue
        try:
            image = loader()
        except Exception:  # a sample that would need a download
            continue
        if image.ndim != 3 or image.shape[2] != 3:
            continue
        h, w = image.shape[:2]
        views = [image, image[:, ::-1], image[h // 8 :, w // 8 :],
                 image[: h * 7 // 8, : w * 7 // 8], image[h // 6 : h * 5 // 6, w // 6 : w * 5 // 6],
                 image[::-1]]
        out += [(f"{name}#{i}", np.ascontiguousarray(v)) for i, v in enumerate(views[:variants])]
    return out


def main() -> None:
    from ppinfer.api.builtin_model import default_model_dir
    from ppinfer.config import RunConfig
    from ppinfer.engines import create_engine
    from ppinfer.modelfiles.source import resolve_source

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model directory (default: built-in)")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--variants", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    source = resolve_source(model=args.model or str(default_model_dir()))
    photos = photo_set(args.variants)
    names = [n for n, _ in photos]
    results = {}
    for precision in ("fp32", args.precision):
        engine = create_engine("analysis", source,
                               RunConfig(device="cpu", precision=precision,
                                         batch_size=args.batch_size))
        engine.ensure_built()
        probs, start = [], time.perf_counter()
        for i in range(0, len(photos), args.batch_size):
            batch = engine.organize([img for _, img in photos[i : i + args.batch_size]])
            probs.append(engine.execute(batch))
        results[precision] = (np.concatenate(probs), time.perf_counter() - start)

    fp32, t32 = results["fp32"]
    low, tlow = results[args.precision]
    agree = fp32.argmax(1) == low.argmax(1)
    labels = source.labels_for(fp32.shape[1])
    for name, a, b, ok in zip(names, fp32.argmax(1), low.argmax(1), agree):
        print(f"{name:28s} fp32 {a:4d} {labels[a][:22]:22s} {args.precision} {b:4d}"
              f"{'' if ok else '  <-- differs'}")
    print(f"\n{source.display_name}: {len(names)} photos, top-1 agreement fp32 vs "
          f"{args.precision}: {agree.mean():.1%} ({agree.sum()}/{len(agree)}); "
          f"max |score diff| {np.abs(fp32 - low).max():.4f}; "
          f"time fp32 {t32:.2f}s, {args.precision} {tlow:.2f}s (includes preprocessing).")


if __name__ == "__main__":
    main()
