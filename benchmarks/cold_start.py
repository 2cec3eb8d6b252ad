"""Cold start: wall time of whole ``ppinfer`` processes, the commands alternating.

    python benchmarks/cold_start.py [--runs 7] [--json OUT]

Runs ``ppinfer predict`` once first so that the built-in model is exported into
``$PPINFER_HOME`` (a temporary one unless set), then, ``--runs`` times in turn: ``ppinfer
predict`` (the built-in model and the shipped photo), the same with
``PPINFER_PADDLE_IMPORT=full`` (``import paddle`` whole, as before ppinfer loaded Paddle's
extension alone), ``python -c 'import paddle'``, ``ppinfer --help`` and ``python -c pass``.
Each is a child process (``subprocess.run``, wall time by ``time.perf_counter``); prints the
minimum and median per command and the 1-minute load average before and after.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PPINFER = [sys.executable, "-m", "ppinfer"]
COMMANDS = {
    "ppinfer predict": (PPINFER + ["predict", "--json"], {}),
    "ppinfer predict, PPINFER_PADDLE_IMPORT=full": (PPINFER + ["predict", "--json"],
                                                    {"PPINFER_PADDLE_IMPORT": "full"}),
    "python -c 'import paddle'": ([sys.executable, "-c", "import paddle"], {}),
    "ppinfer --help": (PPINFER + ["--help"], {}),
    "python -c pass": ([sys.executable, "-c", "pass"], {}),
}


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    home = os.environ.get("PPINFER_HOME")
    scratch = None if home else tempfile.mkdtemp(prefix="ppinfer-cold-")
    env = dict(os.environ, PPINFER_HOME=home or scratch)
    try:
        run_once(COMMANDS["ppinfer predict"][0], env)  # exports the built-in model once
        load_before = os.getloadavg()
        runs: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.runs):
            for name, (command, extra) in COMMANDS.items():
                runs[name].append(run_once(command, {**env, **extra}))
        load_after = os.getloadavg()
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    results = {name: {"min_s": min(v), "median_s": statistics.median(v), "runs_s": v}
               for name, v in runs.items()}
    for name, r in results.items():
        print(f"{name:48s} min {r['min_s']:.3f} s   median {r['median_s']:.3f} s")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps({
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "load_avg_before_after": [load_before, load_after], "results": results},
            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
