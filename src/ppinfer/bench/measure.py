"""Measuring one engine configuration: build, first run, warmup, then timed batches.

OpenVINO ``benchmark_app`` style: the first inference is timed on its own (it pays for lazy
initialisation: oneDNN primitive creation, memory planning), warmup iterations are run and
not counted, and the timed loop stops on a count or a duration, whichever comes first. Nothing
here prints; :mod:`ppinfer.bench.report` formats the figures.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ppinfer.bench.stats import LatencyStats, throughput
from ppinfer.engines.base import Engine
from ppinfer.pipeline.inputs import InputItem

DEFAULT_DURATION = 5.0  # seconds per timed phase when neither a count nor a duration is given
E2E_ROUND_BATCHES = 8  # batches per run_predictions call in end-to-end duration mode


@dataclass(frozen=True)
class StopRule:
    """Stop after ``iterations`` batches or ``duration`` seconds, whichever comes first."""

    iterations: int | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.iterations is not None and self.iterations < 1:
            raise ValueError("iterations must be at least 1")
        if self.duration is not None and not 0 < self.duration < float("inf"):
            raise ValueError("duration must be a positive, finite number of seconds")

    @property
    def effective_duration(self) -> float | None:
        if self.iterations is None and self.duration is None:
            return DEFAULT_DURATION
        return self.duration

    def done(self, count: int, elapsed: float) -> bool:
        if count < 1:
            return False
        if self.iterations is not None and count >= self.iterations:
            return True
        limit = self.effective_duration
        return limit is not None and elapsed >= limit

    def remaining(self, count: int) -> int | None:
        return None if self.iterations is None else max(self.iterations - count, 0)

    def slices(self, rounds: int) -> list[StopRule]:
        """This rule shared out over ``rounds`` interleaved slices (fewer when there are
        fewer iterations than rounds): the counts add up to ``iterations``, the durations to
        the duration."""
        duration = self.effective_duration
        if self.iterations is not None:
            rounds = max(1, min(rounds, self.iterations))
        each = None if duration is None else duration / rounds
        if self.iterations is None:
            return [StopRule(None, each) for _ in range(rounds)]
        base, extra = divmod(self.iterations, rounds)
        return [StopRule(base + (i < extra), each) for i in range(rounds)]


@dataclass
class Phase:
    """One timed phase: per-batch latencies (seconds), images through, wall time."""

    latencies: list[float]
    images: int
    wall_s: float
    stages_ms: dict[str, float] | None = None  # per image, end-to-end phases only
    cpu_s: float | None = None  # this process's CPU time over the phase
    load_avg: tuple[float | None, float | None] | None = None  # 1-min load, before and after

    @property
    def cores_used(self) -> float | None:
        """CPU time / wall time: below the thread count when other work took the cores."""
        return self.cpu_s / self.wall_s if self.cpu_s is not None and self.wall_s > 0 else None

    @property
    def stats(self) -> LatencyStats:
        return LatencyStats.from_seconds(self.latencies)

    @property
    def throughput(self) -> float:
        return throughput(self.images, self.wall_s)


def merged(phases: Sequence[Phase]) -> Phase:
    """Slices of one configuration timed in interleaved rounds, as one phase."""
    images = sum(p.images for p in phases)
    stages = None
    if all(p.stages_ms is not None for p in phases):
        stages = {name: sum(p.stages_ms[name] * p.images for p in phases) / max(images, 1)
                  for name in phases[0].stages_ms}
    cpu = None if any(p.cpu_s is None for p in phases) else sum(p.cpu_s for p in phases)
    load = (phases[0].load_avg[0] if phases[0].load_avg else None,
            phases[-1].load_avg[1] if phases[-1].load_avg else None)
    return Phase([t for p in phases for t in p.latencies], images,
                 sum(p.wall_s for p in phases), stages, cpu_s=cpu, load_avg=load)


@dataclass
class Measurement:
    """Everything measured for one configuration."""

    build_s: float
    first_run_ms: float
    warmup: int
    engine: Phase
    end_to_end: Phase | None = None
    peak_rss_mb: float | None = None
    peak_rss_scope: str = "configuration"
    rss_before_mb: float | None = None  # what earlier configurations left resident
    gpu_memory_mb: float | None = None
    top1: list[int] | None = None  # class id per input image (real inputs only)
    probs: np.ndarray | None = None  # scores on the inputs (real, else the random batch)
    notes: list[str] = field(default_factory=list)


class PeakMemory:
    """Peak resident set size of this process, reset per configuration where Linux allows.

    Writing ``5`` to ``/proc/self/clear_refs`` resets ``VmHWM`` (Linux 4.0+); without it the
    figure is the process's peak since it started (``scope`` says which).
    """

    def __init__(self) -> None:
        self.scope = "configuration"
        self.before_mb: float | None = None  # resident memory when the configuration started

    def reset(self) -> None:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.scope = "configuration"
        except OSError:
            self.scope = "process"
        self.before_mb = _status_mb("VmRSS:")

    def peak_mb(self) -> float:
        peak = _status_mb("VmHWM:")
        if peak is not None:
            return peak
        self.scope = "process"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _status_mb(key: str) -> float | None:
    """A ``kB`` line of ``/proc/self/status`` in MB, or None off Linux."""
    with contextlib.suppress(OSError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return None


def gpu_memory_mb(gpu_id: int) -> float | None:
    """This process's memory on GPU ``gpu_id`` from nvidia-smi, or None.

    Unverified on a GPU: no GPU could run Paddle where ppinfer was built.
    """
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits",
             f"--id={gpu_id}"], capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            with contextlib.suppress(ValueError):
                return float(used)
    return None


def cycle_to(values: Sequence, count: int) -> list:
    """The first ``count`` items of ``values`` repeated."""
    return list(itertools.islice(itertools.cycle(values), count))


class EngineBenchmark:
    """Times one engine configuration. Build, first run, warmup and the timed loops."""

    def __init__(self, engine: Engine, stop: StopRule, warmup: int = 0) -> None:
        self.engine = engine
        self.stop = stop
        self.warmup = warmup
        self.memory = PeakMemory()

    def build(self) -> float:
        """Seconds to build the engine (load, optimise, convert where it must)."""
        self.memory.reset()
        start = time.perf_counter()
        self.engine.ensure_built()
        return time.perf_counter() - start

    def first_run(self, batch: np.ndarray) -> float:
        start = time.perf_counter()
        self.engine.execute(batch)
        return time.perf_counter() - start

    def time_engine(self, batch: np.ndarray, stop: StopRule | None = None,
                    warmup: int | None = None) -> Phase:
        """Warmup, then ``execute(batch)`` until the stop rule says so (``stop`` and
        ``warmup`` default to the benchmark's own: one slice of an interleaved run passes
        its share)."""
        stop = stop or self.stop
        for _ in range(self.warmup if warmup is None else warmup):
            self.engine.execute(batch)
        latencies: list[float] = []
        load, cpu = _load_avg(), time.process_time()
        start = time.perf_counter()
        while not stop.done(len(latencies), time.perf_counter() - start):
            t0 = time.perf_counter()
            self.engine.execute(batch)
            latencies.append(time.perf_counter() - t0)
        wall = time.perf_counter() - start
        return Phase(latencies, len(latencies) * len(batch), wall,
                     cpu_s=time.process_time() - cpu, load_avg=(load, _load_avg()))

    def time_end_to_end(self, items: Sequence[InputItem], stop: StopRule | None = None,
                        warmup: int | None = None) -> Phase:
        """Decode + preprocess + inference + postprocess, exactly as ``predict`` runs them.

        A batch's latency is the time between two finished batches, so it shows what the
        overlapped pipeline delivers; each ``run_predictions`` call starts with a pipeline fill.
        """
        from ppinfer.predict import STAGES, run_predictions

        stop = stop or self.stop
        warmup = self.warmup if warmup is None else warmup
        size = self.engine.config.batch_size
        if warmup:
            run_predictions(self.engine, cycle_to(items, warmup * size), _ignore)
        latencies: list[float] = []
        seconds = dict.fromkeys(STAGES, 0.0)
        images = 0
        load, cpu = _load_avg(), time.process_time()
        last = start = time.perf_counter()

        def on_batch(_n: int) -> None:
            nonlocal last
            now = time.perf_counter()
            latencies.append(now - last)
            last = now

        while not stop.done(len(latencies), time.perf_counter() - start):
            remaining = stop.remaining(len(latencies))
            batches = max(E2E_ROUND_BATCHES, math.ceil(len(items) / size))
            if remaining is not None:
                batches = min(batches, remaining) if stop.duration else remaining
            last = time.perf_counter()
            summary = run_predictions(self.engine, cycle_to(items, batches * size), _ignore,
                                      on_batch=on_batch)
            images += summary.timer.images
            for name, value in summary.timer.seconds.items():
                seconds[name] += value
        wall = time.perf_counter() - start
        stages = {name: 1000.0 * s / max(images, 1) for name, s in seconds.items()}
        return Phase(latencies, images, wall, stages, cpu_s=time.process_time() - cpu,
                     load_avg=(load, _load_avg()))

    def scores(self, tensors: Sequence[np.ndarray]) -> np.ndarray:
        """Untimed: [N, C] scores of the preprocessed images, run in batches of the batch
        size (what reduced precisions are compared with fp32 on)."""
        return engine_scores(self.engine, tensors)

    def peak_rss_mb(self) -> float:
        return self.memory.peak_mb()


def engine_scores(engine: Engine, tensors: Sequence[np.ndarray]) -> np.ndarray:
    """[N, C] scores (probabilities) of ``engine`` on ``tensors``, in batches of its size."""
    size = engine.config.batch_size
    chunks = [engine.probabilities(engine.execute(np.concatenate(tensors[i : i + size])))
              for i in range(0, len(tensors), size)]
    return np.concatenate(chunks)


def _ignore(_result) -> None:
    pass


def _load_avg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on every platform
        return None
