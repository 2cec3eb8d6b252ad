"""Paddle Inference ``analysis`` levers side by side, against ONNX Runtime, in one run.

    python benchmarks/analysis_levers.py MODEL_DIR [MODEL_DIR ...] --batch 1 --batch 8 \\
        --seconds 2 --rounds 3 --json levers.json [--only NAME,GROUP,...] [--photos DIR]
    python benchmarks/analysis_levers.py --list        # the levers and what each changes

For every model directory (any layout ppinfer reads; pass a PIR export and its ``-legacy``
copy to weigh legacy against PIR) and batch size, each lever of ``analysis_levers_catalog``
is one analysis predictor, built by ppinfer's own engine with ppinfer's own Config calls plus
the lever's change. ``baseline`` is exactly what ppinfer does today. ONNX Runtime (ppinfer's
``onnxruntime`` engine, same thread count) is the reference every ratio is taken to.

How it measures. The in-process levers and ONNX Runtime are all built first, warmed, then
timed in interleaved rounds (baseline, lever, ..., onnxruntime, baseline, ...), ``--seconds``
each per round, on a real photo batch (the photo ppinfer ships, or ``--photos DIR``'s images,
preprocessed by the model's own preprocessing and repeated to the batch size), so a machine
that gets busier slows them alike. Reported per lever: the median over rounds of img/s, the
ratio to ONNX Runtime, the ratio to baseline, ``cores used`` (process CPU time / wall time
while it ran), the first run's milliseconds, and its agreement with baseline on the batch's
scores (largest |difference|, share of equal top-1); a lever whose scores differ by more than
1e-4 or whose top-1 changes is flagged ``CHANGES RESULTS``.

Levers that need their environment set before Paddle loads (OpenMP, Paddle FLAGS_) run in a
child process each (this script with a hidden ``--child``), with ONNX Runtime timed in the same
child; their ``vs baseline`` is their ratio to ONNX Runtime divided by that of ``env-control``,
a child with nothing changed. A lever that cannot run on this Paddle is listed with its
one-line error; one that does not apply (a PIR lever on a legacy program) as ``n/a``.
Numbers vary with load: run it on a quiet machine, and read the ratios, not the img/s. The
timed part lasts models x batches x rounds x (seconds + settle) x (in-process levers + 1 +
2 x env levers), plus builds (printed at the start): all levers on one model at two batch
sizes with the defaults take about 8 minutes; ``--only`` and ``--no-child`` shorten it.

The levers, each with what it changes, are in ``analysis_levers_catalog.py`` (its docstring
also says what the PIR oneDNN pass list holds on Paddle 3.3.1); the ratios, the agreement
check and the table in ``analysis_levers_report.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
from analysis_levers_catalog import LEVERS, Lever, select
from analysis_levers_report import REFERENCE, TOLERANCE, derive, machine, print_table

from ppinfer.config import RunConfig

SCHEMA = "ppinfer-analysis-levers/1"


@dataclass(frozen=True)
class LeverConfig(RunConfig):
    """ppinfer's RunConfig whose Config calls carry one lever's change."""

    lever: Lever | None = field(default=None, compare=False)

    def inference_calls(self, input_name=None, input_shape=None, ir="legacy"):
        calls = super().inference_calls(input_name, input_shape, ir)
        if self.lever is None:
            return calls
        return [c for c in calls if c.method not in self.lever.drop] + list(self.lever.add)


@dataclass
class Settings:
    batches: list[int]
    seconds: float
    rounds: int
    warmup: int
    threads: int
    photos: list[str]
    settle: float = 0.25


@dataclass
class Participant:
    """One engine being timed: a lever's analysis predictor, or ONNX Runtime."""

    name: str
    lever: Lever | None
    engine: object = None
    status: str = "ok"  # ok | failed | n/a
    reason: str | None = None
    build_s: float | None = None
    first_run_ms: float | None = None
    rounds: list[float] = field(default_factory=list)  # img/s per round
    cpu_s: float = 0.0
    wall_s: float = 0.0
    probs: np.ndarray | None = None


def one_line(exc: BaseException) -> str:
    """The first line of the error; Paddle's own when ppinfer wrapped it."""
    exc = exc.__cause__ or exc.__context__ or exc
    text = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {text}"


def make_engine(source, name: str, lever: Lever | None, batch: int, threads: int):
    from ppinfer.engines import get_engine

    base = RunConfig(device="cpu", cpu_threads=threads, batch_size=batch)
    if lever is None:
        return get_engine(name)(source, base)
    changed = replace(base, **lever.config)
    config = LeverConfig(**{f.name: getattr(changed, f.name) for f in fields(RunConfig)},
                         lever=lever)
    return get_engine(name)(source, config)


def photo_batch(engine, photos: list[str], batch: int) -> np.ndarray:
    """The photos decoded and preprocessed as the model wants, repeated to ``batch`` images."""
    from ppinfer.pipeline.decode import load_image

    images = [load_image(p) for p in photos]
    chosen = [images[i % len(images)] for i in range(batch)]
    return np.ascontiguousarray(engine.organize(chosen), dtype=np.float32)


def build(source, part: Participant, batch: int, threads: int) -> None:
    engine_name = REFERENCE if part.lever is None else "analysis"
    try:
        part.engine = make_engine(source, engine_name, part.lever, batch, threads)
        start = time.perf_counter()
        part.engine.ensure_built()
        part.build_s = time.perf_counter() - start
    except Exception as exc:  # a lever this Paddle cannot run is a finding, not a crash
        part.status, part.reason, part.engine = "failed", one_line(exc), None


def warm(part: Participant, batch: np.ndarray, warmup: int, small: np.ndarray) -> None:
    """First run (timed on its own), then the lever's warm-up runs."""
    lever = part.lever
    count = lever.warmup if lever is not None and lever.warmup is not None else warmup
    try:
        if lever is not None and lever.warm_batch is not None:
            for _ in range(max(count, 1)):
                part.engine.execute(small)
        start = time.perf_counter()
        part.engine.execute(batch)
        part.first_run_ms = 1000.0 * (time.perf_counter() - start)
        for _ in range(count - 1):
            part.engine.execute(batch)
    except Exception as exc:
        part.status, part.reason = "failed", one_line(exc)


def time_rounds(parts: list[Participant], batch: np.ndarray, settings: Settings) -> None:
    """``settings.rounds`` rounds; in each, every participant runs for ``settings.seconds``,
    after an untimed pause of ``settings.settle`` seconds: Intel OpenMP workers spin for 200 ms
    after Paddle's last parallel region (ONNX Runtime's threads spin too), and would otherwise
    take a core from the start of the next participant's slice. Each round starts one
    participant later than the one before, so none always follows the same neighbour."""
    for index in range(settings.rounds):
        shift = index % len(parts)
        for part in parts[shift:] + parts[:shift]:
            if part.status != "ok":
                continue
            time.sleep(settings.settle)
            try:
                count, cpu, start = 0, time.process_time(), time.perf_counter()
                while count < 1 or time.perf_counter() - start < settings.seconds:
                    part.engine.execute(batch)
                    count += 1
                wall = time.perf_counter() - start
            except Exception as exc:
                part.status, part.reason = "failed", one_line(exc)
                continue
            part.rounds.append(count * len(batch) / wall)
            part.cpu_s += time.process_time() - cpu
            part.wall_s += wall
    for part in parts:  # untimed: the scores the levers are checked on
        if part.status == "ok":
            part.probs = part.engine.probabilities(part.engine.execute(batch))


_primed = False


def prime_process(source, batch: np.ndarray, threads: int) -> None:
    """Run a throwaway baseline predictor once, so that no lever's first run pays for the
    process's first use of Paddle and oneDNN (thread pools, CPU dispatch)."""
    global _primed
    if _primed:
        return
    _primed = True
    with contextlib.suppress(Exception):  # a baseline that cannot run shows in its own row
        engine = make_engine(source, "analysis", None, len(batch), threads)
        engine.ensure_built()
        engine.execute(batch)


def measure_group(source, levers: list[Lever], batch_size: int, settings: Settings,
                  ir: str) -> list[Participant]:
    """Build, warm and time ``levers`` plus ONNX Runtime on one model at one batch size."""
    parts = [Participant(lever.name, lever) for lever in levers] + [Participant(REFERENCE, None)]
    for part in parts:
        reason = part.lever.applies(ir, batch_size) if part.lever is not None else None
        if reason:
            part.status, part.reason = "n/a", reason
        else:
            build(source, part, batch_size, settings.threads)
    ready = [p for p in parts if p.status == "ok"]
    if ready:
        batch = photo_batch(ready[0].engine, settings.photos, batch_size)
        small = photo_batch(ready[0].engine, settings.photos, 1)
        prime_process(source, batch, settings.threads)
        for part in ready:
            warm(part, batch, settings.warmup, small)
        time_rounds(parts, batch, settings)
    for part in parts:
        part.engine = None  # drop the predictors before the next group is built
    gc.collect()
    return parts


def row(model_dir: str, ir: str, batch: int, part: Participant, process: str) -> dict:
    median = statistics.median(part.rounds) if part.rounds else None
    return {
        "model": Path(model_dir).name, "model_dir": str(model_dir), "ir": ir, "batch": batch,
        "lever": part.name, "group": part.lever.group if part.lever else "reference",
        "process": process, "status": part.status, "reason": part.reason,
        "images_per_s": median, "rounds_images_per_s": part.rounds,
        "cores_used": part.cpu_s / part.wall_s if part.wall_s else None,
        "first_run_ms": part.first_run_ms, "build_s": part.build_s,
        "probs": part.probs.tolist() if part.probs is not None else None,
    }


def load_model(model_dir: str):
    from ppinfer.modelfiles.source import resolve_source

    source = resolve_source(model=model_dir)
    return source, source.layout.ir


def run_levers(model_dirs: list[str], levers: list[Lever], settings: Settings,
               process: str) -> list[dict]:
    rows = []
    for model_dir in model_dirs:
        source, ir = load_model(model_dir)
        for batch in settings.batches:
            print(f"{Path(model_dir).name} b{batch}: {', '.join(x.name for x in levers)} "
                  f"+ {REFERENCE} ({process})", file=sys.stderr, flush=True)
            for part in measure_group(source, levers, batch, settings, ir):
                rows.append(row(model_dir, ir, batch, part, process))
    return rows


# -- child processes for the env levers ---------------------------------------------------------


def child_env(lever: Lever, threads: int) -> dict:
    env = dict(os.environ)
    env.update({k: v.format(threads=threads) for k, v in lever.env.items()})
    return env


def run_child(lever: Lever, args: argparse.Namespace, settings: Settings) -> list[dict]:
    """This script in a fresh process with ``lever``'s environment; its rows, or failed rows."""
    with tempfile.TemporaryDirectory(prefix="levers-") as tmp:
        out = Path(tmp) / "rows.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *args.model_dirs,
               "--child", lever.name, "--child-json", str(out), "--seconds", str(settings.seconds),
               "--rounds", str(settings.rounds), "--warmup", str(settings.warmup),
               "--threads", str(settings.threads), "--settle", str(settings.settle)]
        cmd += [a for b in settings.batches for a in ("--batch", str(b))]
        cmd += [a for p in settings.photos for a in ("--photo", p)]
        done = subprocess.run(cmd, env=child_env(lever, settings.threads), text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode == 0 and out.is_file():
            return json.loads(out.read_text(encoding="utf-8"))
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        reason = f"child exited {done.returncode}: {tail}"
    return [{"model": Path(m).name, "model_dir": m, "batch": b, "lever": lever.name,
             "group": lever.group, "process": f"child:{lever.name}", "status": "failed",
             "reason": reason} for m in args.model_dirs for b in settings.batches]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="*", metavar="MODEL_DIR")
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable; "
                        "default 1 and 8)")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="seconds per lever per round (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="warm-up batches, the first run included (default 3)")
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU threads for every engine (default 2)")
    parser.add_argument("--photos", type=Path, help="a folder of images for the batch "
                        "(default: the photo ppinfer ships)")
    parser.add_argument("--settle", type=float, default=0.25,
                        help="untimed pause before each timed slice, seconds (default 0.25)")
    parser.add_argument("--only", help="comma list of lever names or groups (see --list)")
    parser.add_argument("--no-child", action="store_true",
                        help="skip the levers that need a process of their own")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--list", action="store_true", help="list the levers and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--photo", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.list and not args.model_dirs:
        parser.error("give at least one MODEL_DIR")
    if args.seconds <= 0 or args.settle < 0:
        parser.error("--seconds must be positive and --settle not negative")
    if args.rounds < 1 or args.warmup < 1 or args.threads < 1:
        parser.error("--rounds, --warmup and --threads must be at least 1")
    return args


def photo_list(args: argparse.Namespace) -> list[str]:
    if args.photo:
        return list(args.photo)
    if args.photos is None:
        from ppinfer.pipeline.sample import sample_image_path

        return [str(sample_image_path())]
    suffixes = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
    found = sorted(str(p) for p in args.photos.iterdir() if p.suffix.lower() in suffixes)
    if not found:
        sys.exit(f"No images in {args.photos}.")
    return found


def main(argv=None) -> None:
    from ppinfer.errors import PPInferError

    try:
        run(parse_args(argv))
    except PPInferError as exc:  # e.g. a directory that holds no model: one sentence
        sys.exit(str(exc))


def run(args: argparse.Namespace) -> None:
    if args.list:
        for lever in LEVERS.values():
            where = "own process" if lever.own_process else "in process"
            print(f"{lever.name:<24} {lever.group:<9} {where:<12} {lever.what}")
        return
    settings = Settings(sorted(set(args.batch or [1, 8])), args.seconds, args.rounds,
                        args.warmup, args.threads, photo_list(args), args.settle)
    if args.child:  # one env lever, in the fresh process the parent made for it
        process = f"child:{args.child}"
        rows = run_levers(args.model_dirs, [LEVERS[args.child]], settings, process)
        args.child_json.write_text(json.dumps(rows), encoding="utf-8")
        return
    levers = select(args.only)
    for model_dir in args.model_dirs:  # a directory without a model stops the run now
        load_model(model_dir)
    in_process = sum(not lv.own_process for lv in levers) + 1  # + ONNX Runtime
    children = 0 if args.no_child else sum(lv.own_process for lv in levers)
    slices = len(args.model_dirs) * len(settings.batches) * settings.rounds
    minutes = slices * (settings.seconds + settings.settle) * (in_process + 2 * children) / 60
    print(f"timed: about {minutes:.0f} min (+ builds; {children} child processes)",
          file=sys.stderr, flush=True)
    started, t0 = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    info = machine()
    rows = run_levers(args.model_dirs, [lv for lv in levers if not lv.own_process], settings,
                      "main")
    if not args.no_child:
        for lever in (lv for lv in levers if lv.own_process):
            print(f"child process: {lever.name} ({lever.what})", file=sys.stderr, flush=True)
            rows += run_child(lever, args, settings)
    derive(rows)
    print_table(rows)
    if args.json:
        doc = {"schema": SCHEMA, "started": started.isoformat(timespec="seconds"),
               "seconds": time.perf_counter() - t0, "machine": info,
               "settings": {**vars(settings), "tolerance": TOLERANCE},
               "levers": {lv.name: lv.describe() for lv in levers},
               "results": [{k: v for k, v in r.items() if k != "probs"} for r in rows]}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
