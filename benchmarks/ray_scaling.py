"""Images/s of ``ppinfer predict`` locally and on a local Ray (1 and 2 actors), side by side.

Writes N copies of scikit-image's sample photos into a folder, then runs, as child processes and
interleaved (``--rounds`` times each, so load from other jobs hits every configuration alike):

    python -m ppinfer predict -i DIR --json                                  # local
    python -m ppinfer predict -i DIR --json --runner ray --actors A          # A = 1, 2

Each result line is timestamped as it arrives. Reported per run: the wall time of the whole
command (Ray's start and the actors' engine builds included), the time to the first line, and
the steady throughput: lines after the first quarter divided by the time they took (Ray hands
results over a block at a time, so the first lines arrive in bursts). Results are also checked:
every run must give the same file names and top-1 classes as the local one.

    python benchmarks/ray_scaling.py --images 400 --rounds 2 --json benchmarks/results/ray.json
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
    quarter = count // 4
    steady = (count - quarter) / max(stamps[-1] - stamps[quarter - 1], 1e-9)
    ray_line = next((line for line in err.splitlines() if line.startswith("Ray:")), "")
    return {"config": label, "wall_s": round(wall, 2), "first_line_s": round(stamps[0], 2),
            "images_per_s_overall": round(count / wall, 2),
            "images_per_s_steady": round(steady, 2), "ray": ray_line, "top1": tops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    opts = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="ppinfer-ray-bench-"))
    write_copies(folder, opts.images)
    common = ["-i", str(folder / "img*.jpg"), "-b", str(opts.batch_size)]
    configs = [("local", common), ("ray, 1 actor", [*common, "--runner", "ray", "--actors", "1"]),
               ("ray, 2 actors", [*common, "--runner", "ray", "--actors", "2"])]
    runs = []
    for _ in range(opts.rounds):
        for label, args in configs:
            runs.append(run(label, args, opts.images))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "top1"}), flush=True)
    reference = runs[0]["top1"]
    for one in runs:
        assert one.pop("top1") == reference, f"{one['config']} differs from the local run"
    report = {"images": opts.images, "batch_size": opts.batch_size, "rounds": opts.rounds,
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": runs}
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=1) + "\n")
    print("| config | wall s | first line s | images/s overall | images/s steady |")
    print("|---|---|---|---|---|")
    for one in runs:
        print(f"| {one['config']} | {one['wall_s']} | {one['first_line_s']} | "
              f"{one['images_per_s_overall']} | {one['images_per_s_steady']} |")


if __name__ == "__main__":
    main()
