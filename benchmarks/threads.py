"""Many threads sharing one Predictor: throughput with 1, 2 and 4 calling threads per engine.

    python benchmarks/threads.py [MODEL_DIR] [--engines analysis,onnxruntime,openvino]
        [--threads 1,2,4] [--batch 1] [--seconds 3] [--rounds 3] [--json OUT]

Each engine is loaded once (``ppinfer.load``, the built-in EfficientNet-Lite0 when no model is
given); a real photo is preprocessed once into a batch. A configuration is ``T`` threads calling
``engine.execute`` on that batch through the one shared engine for ``--seconds``; images per
second count every call that finished. Configurations run interleaved round by round (engine x
threads, ``--rounds`` times) so a machine that gets busy mid-run slows every row alike; the
median round is reported. How engines take concurrent calls (ppinfer/engines/base.py): analysis
and the executors serialize calls with a lock; onnxruntime runs them at once (ONNX Runtime's
``run`` is thread-safe); openvino gives each concurrent call its own infer request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import threading
import time
from pathlib import Path


def throughput(engine, batch, threads: int, seconds: float) -> float:
    """Images per second with ``threads`` threads calling ``engine.execute(batch)``."""
    done = [0] * threads
    stop = time.perf_counter() + seconds
    start = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        start.wait()
        while time.perf_counter() < stop:
            engine.execute(batch)
            done[i] += len(batch)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - began)


def cpu_flags() -> str:
    """The lscpu flags that decide these figures' kernels."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("Flags:")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return " ".join(f for f in wanted if f in flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None)
    parser.add_argument("--engines", default="analysis,onnxruntime,openvino")
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import ppinfer
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.sample import sample_image_path

    counts = [int(t) for t in args.threads.split(",")]
    photo = load_image(sample_image_path())
    engines = {}
    for name in args.engines.split(","):
        engine = ppinfer.load(args.model, engine=name, batch_size=args.batch).engine
        batch = engine.organize([photo] * args.batch)
        throughput(engine, batch, 1, 1.0)  # warm-up
        engines[name] = (engine, batch)
    figures: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for name, (engine, batch) in engines.items():
            for t in counts:
                figures.setdefault((name, t), []).append(
                    throughput(engine, batch, t, args.seconds))
    rows = []
    for (name, t), values in figures.items():
        rate = statistics.median(values)
        alone = statistics.median(figures[(name, counts[0])])
        rows.append({"engine": name, "threads": t, "img_per_s": round(rate, 2),
                     "vs_first": round(rate / alone, 3), "rounds": [round(v, 2) for v in values]})
        print(f"{name:<12} {t} thread(s): {rate:8.1f} img/s  ({rate / alone:.2f}x of "
              f"{counts[0]} thread)")
    report = {"model": args.model or "built-in EfficientNet_lite0", "batch": args.batch,
              "seconds": args.seconds, "rounds": args.rounds, "cpu_flags": cpu_flags(),
              "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
