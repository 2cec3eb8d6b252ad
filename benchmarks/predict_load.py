"""``ppinfer predict`` under load: many small generated images, memory against images done.

Generates N small images (default 2,000: JPEG and PNG, 48-320 px a side, smooth content with
noise), runs ``python -m ppinfer predict -i DIR -b 16 --json --save FILE`` as a child process, and
samples the child's resident memory (VmRSS in /proc/PID/status) together with the number of
result lines in FILE. Prints one row per tenth of the run and a verdict: the growth of RSS from
the end of warm-up (the first tenth) to the end, which should be near zero if nothing leaks.

    python benchmarks/predict_load.py                       # built-in model, 2,000 images
    python benchmarks/predict_load.py --model out/m --images 5000 --batch-size 32

Exit status 1 if the run does not produce one line per image or RSS grows by more than
--max-growth-mb after warm-up. Linux only (it reads /proc). A script, not a test: the light
version is tests/test_faults.py::test_predict_200_images_batch_16.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SAMPLE_SECONDS = 0.02


@dataclass
class Sample:
    seconds: float
    lines: int
    rss_mb: float
    peak_mb: float


def generate_images(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` small images, alternately JPEG and PNG, of varied sizes and aspect ratios."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        h, w = (int(v) for v in rng.integers(48, 321, 2))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], axis=-1) * 255
        noise = rng.normal(0, 12, (h, w, 3))
        img = np.clip(base + noise + rng.integers(-60, 60, 3), 0, 255).astype(np.uint8)
        ext = ".jpg" if i % 2 == 0 else ".png"
        cv2.imwrite(str(folder / f"img{i:05d}{ext}"), img)


def memory_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MB, or None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    except (KeyError, ValueError):
        return None  # a zombie has no memory lines


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except OSError:
        return 0


def run_predict(args: list[str], save: Path) -> tuple[list[Sample], int, str]:
    """Run predict, sampling memory and progress until it exits."""
    # --json, not the table: the table keeps every result until the end, by design.
    cmd = [sys.executable, "-m", "ppinfer", "predict", *args, "--json", "--save", str(save)]
    log = save.with_suffix(".stderr")
    start = time.perf_counter()
    with open(log, "w") as err:  # a file, not a pipe: nothing can block the child
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        samples: list[Sample] = []
        while proc.poll() is None:
            mem = memory_mb(proc.pid)
            if mem is not None:
                samples.append(Sample(time.perf_counter() - start, count_lines(save), *mem))
            time.sleep(SAMPLE_SECONDS)
    return samples, proc.returncode, log.read_text(errors="replace")


def at_fraction(samples: list[Sample], lines: int) -> Sample | None:
    """The first sample taken once ``lines`` results were written."""
    return next((s for s in samples if s.lines >= lines), None)


def median_rss(samples: list[Sample], low: int, high: int) -> float:
    """Median RSS while the run was between ``low`` and ``high`` results (one batch's
    allocations come and go; the median shows what stays)."""
    window = sorted(s.rss_mb for s in samples if low <= s.lines <= high)
    return window[len(window) // 2] if window else float("nan")


def report(samples: list[Sample], total: int, batch: int, wall: float) -> float:
    """Print the table; return the RSS growth (MB) from the end of warm-up to the end."""
    print(f"\npredict -b {batch} on {total} images: {wall:.1f} s wall, "
          f"{total / wall:.1f} images/s including start-up\n")
    print(f"| {'images done':>11} | {'seconds':>7} | {'RSS MB':>7} | {'peak RSS MB':>11} |")
    print(f"|{'-' * 13}|{'-' * 9}|{'-' * 9}|{'-' * 13}|")
    for tenth in range(1, 11):
        sample = at_fraction(samples, total * tenth // 10)
        if sample is not None:
            print(f"| {sample.lines:>11} | {sample.seconds:>7.1f} | {sample.rss_mb:>7.1f} | "
                  f"{sample.peak_mb:>11.1f} |")
    tenth = total // 10
    warm = median_rss(samples, tenth, 2 * tenth)
    end = median_rss(samples, total - tenth, total - 1)
    warm_peak = at_fraction(samples, 2 * tenth)
    growth = end - warm
    print(f"\nmedian RSS: {warm:.1f} MB over images {tenth}-{2 * tenth} (after warm-up), "
          f"{end:.1f} MB over the last {tenth}: growth {growth:+.1f} MB "
          f"({1000 * growth / max(total - 2 * tenth, 1):+.2f} MB per 1,000 images)")
    if warm_peak is not None and samples:
        print(f"peak RSS: {warm_peak.peak_mb:.1f} MB after warm-up, {samples[-1].peak_mb:.1f} MB "
              "at the end")
    return growth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", help="model directory (default: the built-in model)")
    parser.add_argument("--keep", type=Path, help="generate the images here and keep them")
    parser.add_argument("--max-growth-mb", type=float, default=50.0)
    opts = parser.parse_args()
    if not Path("/proc/self/status").exists():
        print("This benchmark reads /proc: run it on Linux.", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="ppinfer-load-") as tmp:
        folder = opts.keep or Path(tmp) / "images"
        if not (folder.is_dir() and len(list(folder.iterdir())) == opts.images):
            started = time.perf_counter()
            generate_images(folder, opts.images)
            print(f"generated {opts.images} images in {folder} "
                  f"({time.perf_counter() - started:.1f} s)")
        model_args = ["--model", opts.model] if opts.model else []
        # Warm the built-in model's export cache first, so the run measures predicting only.
        first = sorted(folder.iterdir())[0]
        subprocess.run([sys.executable, "-m", "ppinfer", "predict", "-i", str(first),
                        *model_args], check=True, capture_output=True)

        save = Path(tmp) / "results.jsonl"
        started = time.perf_counter()
        samples, code, err = run_predict(
            ["-i", str(folder), "-b", str(opts.batch_size), *model_args], save)
        wall = time.perf_counter() - started
        lines = count_lines(save)
        growth = report(samples, opts.images, opts.batch_size, wall)

    problems = []
    if code != 0:
        tail = [line for line in err.splitlines() if line.strip()][-1:]
        problems.append(f"predict exited {code}: {' '.join(tail)}")
    if lines != opts.images:
        problems.append(f"{lines} result lines for {opts.images} images")
    if not growth <= opts.max_growth_mb:
        problems.append(f"RSS grew {growth:.1f} MB after warm-up (limit {opts.max_growth_mb} MB)")
    print(f"result lines: {lines} of {opts.images}")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
