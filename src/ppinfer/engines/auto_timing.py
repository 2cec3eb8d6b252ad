"""How ``--engine auto`` times its candidates and ranks them (autoselect.py builds and checks
them; this module only measures and decides).

Timing. Each engine is warmed up until its run times settle (:func:`warm_up`), then the
engines are timed in interleaved rounds: every round gives each engine one slice of
:attr:`Policy.slice_s`, the order rotating from round to round. A slice starts by waiting for
the engine timed before to stop using the CPU (:func:`quiesce`): its thread pool keeps spinning
after its last run, Paddle's OpenMP threads for 200 ms (``KMP_BLOCKTIME``), ONNX Runtime's for
30–40 ms, OpenVINO's for 5–10 ms, and the next engine's runs meanwhile took up to 3× their
time. Timed back to back in slices of ⅓ s (the first version of auto), ONNX Runtime, timed
after analysis, read 11–22% low on ResNet50_vd (27.0–31.2 img/s against 34.7–35.5) and ranked
behind OpenVINO, which a 2-second bench and these rounds rank ahead. Then
:attr:`Policy.settle_runs` untimed runs (the first run after another engine is slower; skipped
for long runs) and timed runs; a round scores each engine by the median of its run times in
the slice, which a burst of load from another process moves less than a mean.

Ranking (:func:`rank`, a pure function of the per-round figures). The fastest engine is the
one with the lowest median over rounds. Another engine's lead deficit is the median over rounds
of its time ÷ the fastest's time *in the same round* (rounds pair the engines under the same
machine load), with a standard error from the rounds' spread. An engine is *behind* when the
deficit exceeds :attr:`Policy.tie_margin` beyond :attr:`Policy.confidence` standard errors,
*tied* when it is below the margin by as much, and *unsure* otherwise. Rounds are added until
no engine is unsure (at least :attr:`Policy.min_rounds`) or :attr:`Policy.budget_s` runs out.

The choice. Among the fastest and the engines tied with it, the first in the preference order
wins (autoselect: ``analysis``, the reference, then the others by name): a fixed order, so that
measuring a tie again picks the same engine, and the reference when it is as fast, since its
scores are the ones every other engine is checked against and it needs no conversion. An
engine still unsure when the budget runs out does not take the choice from the fastest (the
best estimate the rounds give), but it makes the result a near tie, reported with its margin
and noise so that a user can measure again (``ppinfer engines --model M --refresh``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: Seconds of interleaved rounds per choice (one precision, batch size and thread count), after
#: the warm-ups: no round starts that would end past it, at the rounds' average length. Rounds
#: stop earlier once the ranking is clear; at least ``MIN_ROUNDS`` are run whatever the budget
#: (a slow model at a large batch can take longer: each slice runs at least one timed batch;
#: ResNet50_vd at batch 8 took 4.5 s).
BUDGET_SECONDS = 4.0
SLICE_SECONDS = 0.15  # per engine per round
#: Before each slice, wait (at most this long) until the engine timed before has stopped using
#: the CPU: Paddle's OpenMP threads spin for 200 ms after a run (``KMP_BLOCKTIME``), ONNX
#: Runtime's for 30–40 ms, and whatever runs next meanwhile is slowed (measured: up to 3× on
#: the next engine's runs in the first 200 ms).
QUIESCE_SECONDS = 0.3
#: Untimed runs at the start of each slice: the first run after another engine's took 4–8%
#: longer (ResNet50_vd, batch 1). Only while the engine's runs are short (under
#: ``SETTLE_UNDER_MS`` in its last round): a few ms matter there, and a settle run is cheap.
SETTLE_RUNS = 1
SETTLE_UNDER_MS = 50.0
MIN_ROUNDS = 3
MAX_ROUNDS = 40
#: Engines within 3% are a tie: two 2-second `ppinfer bench` runs on a quiet machine agree
#: within 3% on most rows, so a smaller lead is not a reproducible ranking.
TIE_MARGIN = 0.03
CONFIDENCE = 2.0  # standard errors (about 95%)
WARMUP_MIN_RUNS = 2
WARMUP_MAX_RUNS = 20
WARMUP_MAX_SECONDS = 0.5  # per engine
WARMUP_SETTLED = 0.10  # the last three warm-up runs within 10% of each other


@dataclass(frozen=True)
class Policy:
    """The knobs of one measurement; tests pass short budgets here."""

    budget_s: float = BUDGET_SECONDS
    slice_s: float = SLICE_SECONDS
    quiesce_s: float = QUIESCE_SECONDS
    settle_runs: int = SETTLE_RUNS
    min_rounds: int = MIN_ROUNDS
    max_rounds: int = MAX_ROUNDS
    tie_margin: float = TIE_MARGIN
    confidence: float = CONFIDENCE


@dataclass
class Ranking:
    """The verdict on per-round figures: ``order`` fastest first, the ``chosen`` engine, and
    how sure: ``tied`` (engines clearly within the tie margin of the fastest: the preference
    order chooses among them), ``unsure`` (neither clearly tied nor clearly behind),
    ``margin`` (the chosen engine's lead over the ``closest`` other engine, a fraction;
    negative when the tie rule chose a slower one) and ``noise`` (that comparison's
    confidence half-width, a fraction)."""

    order: list[str]
    chosen: str
    ms: dict[str, float]
    tied: list[str] = field(default_factory=list)
    unsure: list[str] = field(default_factory=list)
    margin: float | None = None
    noise: float | None = None
    closest: str | None = None  # the engine ``margin`` compares with

    @property
    def near_tie(self) -> bool:
        return bool(self.tied or self.unsure)

    @property
    def tied_with_choice(self) -> list[str]:
        """The other engines within the noise of the choice, fastest first (empty: none)."""
        pool = {self.order[0], *self.tied, *self.unsure}
        return [n for n in self.order if n in pool and n != self.chosen]


def rank(round_ms: dict[str, Sequence[float]], preference: Sequence[str],
         policy: Policy = Policy()) -> Ranking:
    """Rank engines from their per-round figures (ms per batch, rounds aligned: index j is the
    same round for every engine). ``preference`` breaks ties and orders equal figures."""
    names = sorted(round_ms, key=lambda n: (_median(round_ms[n]), _position(preference, n)))
    if not names:
        raise ValueError("rank() needs at least one engine")
    fastest, ms = names[0], {n: _median(round_ms[n]) for n in names}
    tied, unsure, deficits = [], [], {}
    for name in names[1:]:
        deficit, noise = _paired_deficit(round_ms[name], round_ms[fastest], policy.confidence)
        deficits[name] = (deficit, noise)
        if deficit + noise <= policy.tie_margin:
            tied.append(name)
        elif deficit - noise <= policy.tie_margin:
            unsure.append(name)
    chosen = min([fastest, *tied], key=lambda n: _position(preference, n))
    margin = noise = closest = None
    if chosen != fastest:
        (deficit, noise), closest = deficits[chosen], fastest
        margin = -deficit
    elif deficits:
        closest = min(deficits, key=lambda n: deficits[n][0])
        margin, noise = deficits[closest]
    return Ranking(names, chosen, ms, tied, unsure, margin, noise, closest)


def decided(ranking: Ranking, rounds: int, policy: Policy) -> bool:
    """Enough rounds, and every engine clearly tied with the fastest or clearly behind."""
    return rounds >= policy.min_rounds and not ranking.unsure


def _paired_deficit(other: Sequence[float], fastest: Sequence[float],
                    confidence: float) -> tuple[float, float]:
    """(how much slower ``other`` is than ``fastest``: the median of the per-round ratios − 1,
    ``confidence`` standard errors of that median as a fraction). The standard error is the
    median's (1.253 σ / √n), σ estimated robustly from the median absolute deviation of the
    log ratios; fewer than three rounds give an infinite error (nothing is decided yet)."""
    logs = [math.log(o / f) for o, f in zip(other, fastest) if o > 0 and f > 0]
    if not logs:
        return 0.0, math.inf
    centre = statistics.median(logs)
    if len(logs) < 3:
        return math.expm1(centre), math.inf
    mad = statistics.median(abs(x - centre) for x in logs)
    stderr = 1.253 * 1.4826 * mad / math.sqrt(len(logs))
    return math.expm1(centre), math.expm1(confidence * stderr) if stderr > 0 else 0.0


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if len(values) else math.inf


def _position(preference: Sequence[str], name: str) -> tuple[int, str]:
    return (list(preference).index(name) if name in preference else len(preference), name)


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Timing:
    """What :func:`time_rounds` measured: per-round figures of the engines that finished,
    the failures, the ranking and why the rounds stopped (decided | budget | max_rounds |
    single)."""

    round_ms: dict[str, list[float]]
    failed: dict[str, BaseException]
    ranking: Ranking | None
    rounds: int
    seconds: float
    stop: str
    other_cores: float | None = None  # CPU other processes used meanwhile (Linux), in cores
    spin_ms: dict[str, float] = field(default_factory=dict)  # :func:`quiesce` after each


def warm_up(run: Callable[[], object]) -> int:
    """Run until the last three run times are within :data:`WARMUP_SETTLED` of each other
    (at least :data:`WARMUP_MIN_RUNS`, at most :data:`WARMUP_MAX_RUNS` runs or
    :data:`WARMUP_MAX_SECONDS`); the number of runs."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < WARMUP_MAX_RUNS:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        if len(times) >= max(WARMUP_MIN_RUNS, 3) and _settled(times[-3:]):
            break
        if len(times) >= WARMUP_MIN_RUNS and time.perf_counter() - start > WARMUP_MAX_SECONDS:
            break
    return len(times)


def _settled(last: list[float]) -> bool:
    return max(last) <= min(last) * (1.0 + WARMUP_SETTLED)


def time_slice(run: Callable[[], object], policy: Policy = Policy(),
               settle: bool = True) -> tuple[float, float]:
    """(median ms of one slice, seconds waited first for the process to go idle): wait until
    the threads of the engine timed before stop spinning (:func:`quiesce`), run
    ``policy.settle_runs`` untimed if ``settle``, then time runs for ``policy.slice_s`` (at
    least one)."""
    waited = quiesce(policy.quiesce_s)
    for _ in range(policy.settle_runs if settle else 0):
        run()
    times: list[float] = []
    start = time.perf_counter()
    while not times or time.perf_counter() - start < policy.slice_s:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times)), waited


def quiesce(limit_s: float, step_s: float = 0.005) -> float:
    """Sleep until this process uses under a tenth of a core over ``step_s`` (its engines'
    worker threads have stopped spinning), at most ``limit_s``; the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        cpu0, t0 = time.process_time(), time.perf_counter()
        time.sleep(step_s)
        if time.process_time() - cpu0 < 0.1 * (time.perf_counter() - t0):
            break
    return time.perf_counter() - start


def time_rounds(runs: dict[str, Callable[[], object]], preference: Sequence[str],
                policy: Policy = Policy()) -> Timing:
    """Interleaved rounds (the order rotating) until :func:`decided`, the budget or
    :attr:`Policy.max_rounds`; an engine that raises drops out and is reported in ``failed``."""
    names = [n for n in preference if n in runs] + sorted(set(runs) - set(preference))
    round_ms: dict[str, list[float]] = {n: [] for n in names}
    spin: dict[str, list[float]] = {n: [] for n in names}
    failed: dict[str, BaseException] = {}
    load, previous = MachineLoad(), None
    start, rounds, stop, ranking = time.perf_counter(), 0, "max_rounds", None
    while rounds < policy.max_rounds:
        live = [n for n in names if n not in failed]
        if len(live) < 2:
            stop = "single"
            break
        for name in live[rounds % len(live):] + live[:rounds % len(live)]:
            try:
                last = round_ms[name][-1] if round_ms[name] else 0.0
                ms, waited = time_slice(runs[name], policy, settle=last < SETTLE_UNDER_MS)
            except Exception as exc:  # one engine failing mid-way must not stop the others
                failed[name] = exc
            else:
                round_ms[name].append(ms)
                if previous is not None:
                    spin[previous].append(1000.0 * waited)
            previous = name
        rounds += 1
        ranking = rank({n: v for n, v in round_ms.items() if n not in failed}, preference,
                       policy)
        if decided(ranking, rounds, policy):
            stop = "decided"
            break
        elapsed = time.perf_counter() - start
        if rounds >= policy.min_rounds and elapsed * (rounds + 1) / rounds > policy.budget_s:
            stop = "budget"  # another round like these would overrun it
            break
    kept = _time_alone({n: v for n, v in round_ms.items() if n not in failed}, runs, failed,
                       policy)
    return Timing(kept, failed, rank(kept, preference, policy) if kept else None, rounds,
                  time.perf_counter() - start, stop, load.other_cores(),
                  {n: float(np.median(v)) for n, v in spin.items() if v and n in kept})


def _time_alone(kept: dict[str, list[float]], runs, failed, policy: Policy):
    """An engine with no round (it was the only one): one slice, for its figures."""
    for name, figures in kept.items():
        if not figures:
            try:
                figures.append(time_slice(runs[name], policy)[0])
            except Exception as exc:  # the caller reports it as failed
                failed[name] = exc
    return {n: v for n, v in kept.items() if n not in failed}


class MachineLoad:
    """How many cores other processes kept busy since it was made: the machine's busy time
    (``/proc/stat``, every container on the kernel included) minus this process's CPU time.
    Load slows every engine but not alike (ONNX Runtime's two spinning threads lost 3.6× on
    ResNet50_vd when another process held one of two cores, OpenVINO 1.6×), so a choice
    measured on a busy machine says so. ``None`` where ``/proc/stat`` cannot be read."""

    def __init__(self) -> None:
        self._start = (_machine_busy_s(), time.process_time(), time.perf_counter())

    def other_cores(self) -> float | None:
        busy0, cpu0, wall0 = self._start
        busy1, wall = _machine_busy_s(), time.perf_counter() - wall0
        if busy0 is None or busy1 is None or wall <= 0:
            return None
        return max(0.0, (busy1 - busy0 - (time.process_time() - cpu0)) / wall)


def _machine_busy_s() -> float | None:
    """Seconds of CPU the whole machine has spent busy since boot (Linux), else None."""
    import os

    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:9]]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    return (sum(fields) - fields[3] - fields[4]) / ticks  # all but idle and iowait
