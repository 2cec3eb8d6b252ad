"""Decode in threads or in worker processes: end-to-end predict against engine-only.

    python benchmarks/decode_workers.py MODEL_DIR [MODEL_DIR ...] --photos DIR
        [--engine analysis] [--batch 8] [--images 240] [--rounds 3] [--json OUT]

For each model, in one process and interleaved round by round: the engine alone on one
preprocessed batch (engine-only), then ``ppinfer.predict.run_predictions`` over ``--images``
real photos (the JPEGs in ``--photos``, repeated) with ``PPINFER_DECODE=threads`` and with
``PPINFER_DECODE=processes``. Prints img/s (median of the rounds) and each mode's ratio to
engine-only, and writes the figures as JSON. The worker processes are started before the
first timed round (they are kept between runs), so the figures are the steady state; starting
them costs about 0.3 s once per process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def measure(model: str, engine_name: str, batch: int, photos: list[Path], images: int,
            rounds: int) -> dict:
    import ppinfer
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.inputs import InputItem
    from ppinfer.predict import run_predictions

    engine = ppinfer.load(model, engine=engine_name, batch_size=batch).engine
    batch_array = engine.organize([load_image(photos[i % len(photos)]) for i in range(batch)])
    items = [InputItem(str(photos[i % len(photos)])) for i in range(images)]

    def engine_only() -> int:
        for _ in range(images // batch):
            engine.execute(batch_array)
        return images // batch * batch

    def predict(mode: str):
        def run() -> int:
            os.environ["PPINFER_DECODE"] = mode
            summary = run_predictions(engine, items, lambda _r: None)
            assert summary.errors == 0 and summary.results == images, summary
            return images
        return run

    modes = {"engine-only": engine_only, "threads": predict("threads"),
             "processes": predict("processes")}
    for run in modes.values():  # warm-up: caches, oneDNN kernels, worker processes
        run()
    rates: dict[str, list[float]] = {name: [] for name in modes}
    cores: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(rounds):
        for name, run in modes.items():
            cpu, start = time.process_time(), time.perf_counter()
            done = run()
            wall = time.perf_counter() - start
            rates[name].append(done / wall)
            cores[name].append((time.process_time() - cpu) / wall)
    base = statistics.median(rates["engine-only"])
    return {
        "model": Path(model).name, "engine": engine_name, "batch": batch, "images": images,
        "modes": {name: {"img_s": statistics.median(v), "rounds": v,
                         "ratio": statistics.median(v) / base,
                         "main_process_cores": statistics.median(cores[name])}
                  for name, v in rates.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--photos", required=True, type=Path)
    parser.add_argument("--engine", default="analysis")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not photos:
        parser.error(f"no JPEGs in {args.photos}")
    rows = []
    for model in args.models:
        row = measure(model, args.engine, args.batch, photos, args.images, args.rounds)
        rows.append(row)
        for name, m in row["modes"].items():
            print(f"{row['model']:32s} {args.engine:12s} b{args.batch:<3d} {name:12s} "
                  f"{m['img_s']:7.1f} img/s  {m['ratio']:.2f}x engine-only  "
                  f"rounds {[round(r, 1) for r in m['rounds']]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
