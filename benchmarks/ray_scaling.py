"""Images/s of ``ppinfer predict`` locally and on a local Ray (1 and 2 actors), side by side.

Writes copies of the sample photos of benchmarks/prepare.py, then runs, as child processes, for
each image count (default 400 and 1200) and round, one after the other (so load from other
jobs hits every configuration alike):

    python -m ppinfer predict --input-list LIST --json                          # local
    python -m ppinfer predict --input-list LIST --json --cpu-threads 1          # as one actor
    python -m ppinfer predict --input-list LIST --json --runner ray --actors A  # A = 1, 2

Reported per run: the wall time of the whole command (Ray's start and the actors' engine
builds included), the time to the first result line, and the rate of the lines after it (on
Ray, decode tasks work ahead while the actors start, so that rate leans towards inference
alone). Per configuration: the throughput once
started, (large - small images) / (large wall - small wall), where the fixed costs cancel. Every
run must give the same file names and top-1 classes as the local one.

    python benchmarks/ray_scaling.py --images 400,1200 --json benchmarks/results/ray.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_copies(folder: Path, count: int) -> None:
    """``count`` JPEGs: the sample photos of benchmarks/prepare.py, copied round robin."""
    from prepare import write_photos  # benchmarks/prepare.py, next to this script

    photos = write_photos(folder / "originals")
    for i in range(count):
        shutil.copyfile(photos[i % len(photos)], folder / f"img{i:05d}.jpg")


def run(label: str, args: list[str], count: int) -> dict:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ppinfer", "predict", *args, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stamps, tops = [], []
    for line in proc.stdout:
        stamps.append(time.perf_counter() - start)
        row = json.loads(line)
        tops.append((row["file_name"], row.get("class_ids", [None])[0]))
    err = proc.stderr.read()
    proc.wait()
    wall = time.perf_counter() - start
    if proc.returncode != 0 or len(stamps) != count:
        raise SystemExit(f"{label}: exit {proc.returncode}, {len(stamps)} lines\n{err}")
    ray_line = next((line for line in err.splitlines() if line.startswith("Ray:")), "")
    return {"config": label, "wall_s": round(wall, 2), "first_line_s": round(stamps[0], 2),
            "images_per_s_overall": round(count / wall, 2),
            "images_per_s_after_first_line": round((count - 1) / max(stamps[-1] - stamps[0],
                                                                       1e-9), 2),
            "ray": ray_line, "top1": tops}


def marginal(runs: list[dict], config: str, small: int, large: int) -> float | None:
    """Images/s once started: the extra images of the large run over the extra time they took
    (Ray's start and the engine builds cancel out), from the same round."""
    rates = []
    for one in runs:
        if one["config"] == config and one["images"] == large:
            twin = next(r for r in runs if r["config"] == config and r["images"] == small
                        and r["round"] == one["round"])
            rates.append((large - small) / max(one["wall_s"] - twin["wall_s"], 1e-9))
    return round(sum(rates) / len(rates), 2) if rates else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="400,1200",
                        help="Image counts, comma-separated (two: the marginal rate is shown).")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args()
    sizes = sorted(int(n) for n in opts.images.split(","))

    folder = Path(tempfile.mkdtemp(prefix="ppinfer-ray-bench-"))
    write_copies(folder, sizes[-1])
    configs = [("local", []), ("local, 1 thread", ["--cpu-threads", "1"]),
               ("ray, 1 actor", ["--runner", "ray", "--actors", "1"]),
               ("ray, 2 actors", ["--runner", "ray", "--actors", "2"])]
    runs, reference = [], {}
    for round_ in range(opts.rounds):
        for size in sizes:
            listing = folder / f"list{size}.txt"
            listing.write_text("".join(f"{folder}/img{i:05d}.jpg\n" for i in range(size)))
            for label, extra in configs:
                args = ["--input-list", str(listing), "-b", str(opts.batch_size), *extra]
                one = run(label, args, size)
                tops = one.pop("top1")
                assert reference.setdefault(size, tops) == tops, f"{label} differs from local"
                one.update(images=size, round=round_)
                runs.append(one)
                print(json.dumps(one), flush=True)
    summary = [{"config": label, "images_per_s_once_started":
                marginal(runs, label, sizes[0], sizes[-1]) if len(sizes) > 1 else None}
               for label, _ in configs]
    report = {"sizes": sizes, "batch_size": opts.batch_size, "rounds": opts.rounds,
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs,
              "summary": summary}
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=1) + "\n")
    print("| config | images | wall s | first line s | images/s overall | after first line |")
    print("|---|---|---|---|---|---|")
    for one in runs:
        print(f"| {one['config']} | {one['images']} | {one['wall_s']} | {one['first_line_s']} | "
              f"{one['images_per_s_overall']} | {one['images_per_s_after_first_line']} |")
    for row in summary:
        print(f"{row['config']}: {row['images_per_s_once_started']} images/s once started")


if __name__ == "__main__":
    main()
