"""``--engine auto``: the fastest installed engine for this model, machine, precision, batch
size and thread count, chosen by measuring, with parity against analysis checked.

:func:`choose_engine` is the plain entry point (the CLI and the Python API call it). On first
use it builds every engine that can run the model at the precision, checks its scores on the
shipped photo against ``analysis`` (fp32 for reduced precisions), warms each up until its run
times settle, and times them on a batch of that photo in interleaved rounds until the ranking
is clear or a budget of a few seconds is spent (auto_timing.py says how, and how a near tie is
broken: ``analysis`` first, then by name). The figures, the choice and how sure it is
(``near_tie``, ``margin``, ``noise``) are written to
``<cache>/auto/<model digest>/<precision>-b<batch>-t<threads>-<setup>.json`` and reused while
the model files, the machine and the installed engines are the same. Where the directory
holds both programs of one model (ppinfer's exports on Paddle 3), ``analysis`` is timed on each
and the choice names the program that won (auto_programs.py). Peers such as PaddleX's
high-performance mode choose from a static table; this measures.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from ppinfer.config import RunConfig
from ppinfer.engines.auto_cache import (  # noqa: F401  (cache_path, model_key: public here too)
    SCHEMA,
    cache_path,
    model_key,
    read_choice,
    write_choice,
)
from ppinfer.engines.auto_default import (  # noqa: F401  (public here too)
    DEFAULT_ENGINE_ENV,
    REFERENCE,
    default_engine,
    installed_candidates,
)
from ppinfer.engines.auto_programs import ON_EITHER_PROGRAM, label, on_program, other_program
from ppinfer.engines.auto_timing import Policy, time_rounds, warm_up
from ppinfer.errors import ConfigError, PPInferError
from ppinfer.modelfiles.formats import is_quantized, kind_phrase
from ppinfer.modelfiles.source import ModelSource

FP32_TOLERANCE = 1e-4
POLICY = Policy()  # how long and how sure: auto_timing.py
BUSY_SHARE = 0.2  # of the machine's cores, used by other processes while timing: "busy"
NO_INT8 = ("int8 needs a quantized model (ppinfer quantize writes one, which then runs on its "
           "engine at int8 by itself)")


@dataclass
class Candidate:
    engine: str
    status: str  # ok | skipped | disagrees | failed
    reason: str | None = None
    images_per_s: float | None = None
    ms_per_batch: float | None = None
    build_s: float | None = None
    max_abs_diff: float | None = None  # vs analysis (fp32 for a reduced precision)
    warmup_runs: int | None = None
    round_ms: list[float] | None = None  # median ms per batch in each interleaved round
    spin_ms: float | None = None  # how long its threads kept the CPU busy after a slice
    program: str | None = None  # the directory's other program (auto_programs.py), else None

    @property
    def label(self) -> str:
        return label(self.engine, self.program)


@dataclass
class Choice:
    engine: str
    precision: str
    batch_size: int
    cpu_threads: int
    candidates: list[Candidate]
    measured_at: str
    near_tie: bool = False  # another engine within the noise (or 3%) of the fastest
    tied: list[str] = field(default_factory=list)  # those engines
    unsure: list[str] = field(default_factory=list)  # of them, those the rounds could not place
    margin: float | None = None  # the choice's lead over the closest other engine (fraction)
    margin_over: str | None = None  # that engine
    noise: float | None = None  # that lead's ± at about 95% confidence (fraction)
    rounds: int = 0
    stop: str | None = None  # decided | budget | max_rounds | single
    other_cores: float | None = None  # cores other processes used during the rounds (Linux)
    timed_s: float | None = None  # seconds the rounds took (warm-ups and builds not included)
    cached: bool = False
    path: Path | None = None  # the cache file; None when it could not be written
    not_cached: str | None = None  # why the cache could not be written
    program: str | None = None  # the winner ran the directory's other program (pir/legacy)
    built: object | None = field(default=None, repr=False)  # the winner, built, when measured
    quantized: bool = False  # taken from the card of a model ppinfer quantize wrote, not timed

    def describe(self) -> str:
        """One line: the choice and every candidate's throughput."""
        if self.quantized:
            return (f"--engine auto: {self.engine} {self.precision}: the model was quantized "
                    "for it (its inference.yml says so; no engine was timed).")
        figures = ", ".join(
            f"{c.label} {c.images_per_s:.1f}" if c.images_per_s is not None
            else f"{c.label} {c.status}" for c in self.candidates)
        how = "cached" if self.cached else "measured"
        unsaved = f"; not cached: {self.not_cached}" if self.not_cached else ""
        return (f"--engine auto chose {self.label} ({self.precision}, batch {self.batch_size}, "
                f"{self.cpu_threads} threads; img/s: {figures}; {self.verdict()}; "
                f"{how} {self.measured_at}{unsaved}).")

    def verdict(self) -> str:
        """How sure the choice is, in words."""
        if self.margin is None:
            return "the only engine that runs"
        known = self.noise is not None and math.isfinite(self.noise)
        noise = f"±{100 * self.noise:.1f}%" if known else "± unknown"
        figures = (f"{100 * self.margin:+.1f}% {noise} vs {self.margin_over}, "
                   f"{self.rounds} rounds")
        if self.busy:
            figures += (f"; the machine was busy: other processes used {self.other_cores:.1f} "
                        "cores; ppinfer engines --refresh measures again when it is quiet")
        if not self.near_tie:
            return f"clearly fastest ({figures})"
        if self.unsure:
            again = "" if self.busy else "; ppinfer engines --refresh measures again"
            return f"near tie: within the noise of {', '.join(self.unsure)} ({figures}{again})"
        return (f"near tie: within 3% of {', '.join(self.tied)} ({figures}; a tie goes to "
                f"{REFERENCE}, then by name)")

    @property
    def label(self) -> str:
        """The engine, and the program when it is the directory's other one."""
        return label(self.engine, self.program)

    @property
    def busy(self) -> bool:
        """Other processes took a fifth of the cores or more while the engines were timed."""
        return self.other_cores is not None and self.other_cores >= BUSY_SHARE * (
            os.cpu_count() or 1)

    def to_json_dict(self) -> dict:
        return {"schema": SCHEMA, "engine": self.engine, "program": self.program,
                "precision": self.precision,
                "batch_size": self.batch_size, "cpu_threads": self.cpu_threads,
                "measured_at": self.measured_at, "near_tie": self.near_tie, "tied": self.tied,
                "unsure": self.unsure, "margin": _finite(self.margin),
                "margin_over": self.margin_over, "noise": _finite(self.noise),
                "rounds": self.rounds, "stop": self.stop,
                "other_cores": _finite(self.other_cores), "busy": self.busy,
                "timed_s": _finite(self.timed_s),
                "candidates": [{k: _finite(v) if isinstance(v, float) else v
                                for k, v in asdict(c).items()} for c in self.candidates]}


def choose_engine(source: ModelSource, config: RunConfig, *, refresh: bool = False,
                  cache_root: Path | None = None, seconds: float | None = None,
                  policy: Policy | None = None, announce=None) -> Choice:
    """The fastest engine that agrees with analysis, from the cache or measured now
    (``announce()`` is called first when it is measured).
    ``seconds`` is the timing budget (default :data:`~ppinfer.engines.auto_timing.BUDGET_SECONDS`),
    ``policy`` every knob of the measurement (auto_timing.Policy)."""
    config = config.for_model(source.quantized_for)
    if source.layout is None or not source.layout.is_inference_model:
        raise ConfigError("--engine auto chooses among engines that run an exported model: "
                          "pass --model DIR (export a checkpoint first).")
    if source.quantized_for:  # one engine runs it at int8: the others refuse its files
        return _quantized_choice(source, config)
    if config.precision == "int8" and not is_quantized(source.layout):  # before any timing
        raise ConfigError(f"--engine auto found no engine that runs this model at int8: {NO_INT8}.")
    path = cache_path(source, config, cache_root)
    if not refresh:
        cached = _read(path, config)
        if cached is not None:
            return cached
    policy = policy or POLICY
    if seconds is not None:
        policy = replace(policy, budget_s=seconds)
    if announce is not None:
        announce()
    choice = measure_candidates(source, config, policy)
    try:
        write_choice(path, choice.to_json_dict())
        choice.path = path
    except OSError as exc:  # a read-only cache: the measured choice still runs, said so
        choice.not_cached = (f"cannot write {path} ({exc.strerror or exc}); set PPINFER_HOME to "
                             "a writable folder")
    return choice


def _quantized_choice(source: ModelSource, config: RunConfig) -> Choice:
    """The engine ``ppinfer quantize`` made ``source`` for, without timing: no other engine
    runs its int8 files at int8 (``precision_problem`` says why for each)."""
    from ppinfer.engines.base import get_engine, precision_problem

    engine = source.quantized_for
    missing = get_engine(engine).missing()
    if missing:
        raise ConfigError(f"This model was quantized for the {engine} engine, which cannot run "
                          f"here: {missing}")
    problem = precision_problem(get_engine(engine), source, config.precision)
    if problem:  # e.g. --precision fp32 on an OpenVINO int8 IR: what predict would refuse
        raise ConfigError(problem)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return Choice(engine, config.precision, config.batch_size, int(config.cpu_threads),
                  [Candidate(engine, "ok")], now, stop="single", quantized=True)


def candidate_engines(source: ModelSource, precision: str) -> list[tuple[str, str | None]]:
    """(engine, why it cannot take part or None) for every registered engine."""
    from ppinfer.engines.base import ENGINES, load_plugins, precision_problem

    load_plugins()
    out = []
    for name in sorted(ENGINES, key=lambda n: (n != REFERENCE, n)):
        cls = ENGINES[name]
        reason = None
        if cls.needs_architecture:
            reason = "builds the architecture from a checkpoint (slow to start)"
        elif not cls.auto_candidate:
            reason = "not measured by auto (a checking engine, slower than analysis)"
        elif not cls.can_run(source):
            reason = f"cannot run {kind_phrase(source.layout.kind)}"
        else:
            reason = cls.missing() or precision_problem(cls, source, precision)
        out.append((name, reason))
    return out


def measure_candidates(source: ModelSource, config: RunConfig,
                       policy: Policy | None = None) -> Choice:
    """Build, parity-check and warm up every candidate, then time them in interleaved rounds
    until the ranking is clear or the budget is spent (auto_timing.py), and keep the chosen
    one built."""
    policy = policy or POLICY
    batch = _photo_batch(source, config.batch_size)
    reference, built = _reference_scores(source, config, batch)
    tolerance = FP32_TOLERANCE if config.precision == "fp32" else _reduced_tolerance()
    candidates, engines = {}, {}
    for name, reason in candidate_engines(source, config.precision):
        if reason:
            candidates[name] = Candidate(name, "skipped", reason)
            continue
        reuse = built if name == REFERENCE and config.precision == "fp32" else None
        candidates[name], engines[name] = _prepare_one(name, source, config, batch, reference,
                                                       tolerance, reuse)
        other = other_program(source) if name in ON_EITHER_PROGRAM else None
        if other is not None:
            key = label(name, other.layout.ir)
            candidates[key], engines[key] = _prepare_one(name, other, config, batch, reference,
                                                         tolerance)
            candidates[key].program = other.layout.ir
    engines = {n: e for n, e in engines.items() if e is not None}
    preference = list(candidates)  # analysis first, then by name: the tie order
    timing = time_rounds({n: partial(e.execute, batch) for n, e in engines.items()},
                         preference, policy)
    for name, exc in timing.failed.items():
        candidates[name].status, candidates[name].reason = "failed", _one_line(exc)
    if timing.ranking is None:
        why = (NO_INT8 if config.precision == "int8" else
               "`ppinfer engines --model M --precision P` lists each engine's reason")
        raise ConfigError("--engine auto found no engine that runs this model at "
                          f"{config.precision}: {why}.")
    ranking = timing.ranking
    for name, figures in timing.round_ms.items():
        c = candidates[name]
        c.round_ms, c.ms_per_batch = figures, ranking.ms[name]
        c.spin_ms = timing.spin_ms.get(name)
        c.images_per_s = 1000.0 * len(batch) / ranking.ms[name]
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    won = candidates[ranking.chosen]
    return Choice(won.engine, config.precision, config.batch_size, int(config.cpu_threads),
                  list(candidates.values()), now, near_tie=ranking.near_tie,
                  tied=ranking.tied_with_choice, unsure=list(ranking.unsure),
                  margin=ranking.margin, margin_over=ranking.closest, noise=ranking.noise,
                  rounds=timing.rounds, stop=timing.stop, other_cores=timing.other_cores,
                  timed_s=timing.seconds, program=won.program,
                  built=engines.get(ranking.chosen))


def engine_for(choice: Choice, source: ModelSource, config: RunConfig):
    """The chosen engine, built when it was just measured, else created on the chosen program."""
    from ppinfer.engines.base import create_engine

    if choice.built is not None:
        return choice.built
    return create_engine(choice.engine, on_program(source, choice.program), config)


def source_for(choice: Choice, source: ModelSource) -> ModelSource:
    """``source`` on the program the choice ran (for engines built elsewhere: Ray actors)."""
    return on_program(source, choice.program)


def _prepare_one(name, source, config, batch, reference, tolerance, built=None):
    """Build ``name`` (or take ``built``: (the reference engine, its build seconds)), check
    its scores on ``batch`` against the reference's, warm it up."""
    from ppinfer.engines.base import create_engine

    try:
        if built is not None:
            engine, build_s = built
        else:
            engine = create_engine(name, source, config)
            start = time.perf_counter()
            engine.ensure_built()
            build_s = time.perf_counter() - start
        probs = engine.probabilities(engine.execute(batch))
        diff = float(np.max(np.abs(probs - reference)))
        if not diff <= tolerance or not np.array_equal(probs.argmax(1), reference.argmax(1)):
            return Candidate(name, "disagrees", f"scores differ from {REFERENCE} by {diff:.2e}",
                             build_s=build_s, max_abs_diff=diff), None
        warmup_runs = warm_up(partial(engine.execute, batch))
    except PPInferError as exc:
        return Candidate(name, "skipped", str(exc)), None
    except Exception as exc:  # an engine that breaks must not stop the others
        return Candidate(name, "failed", _one_line(exc)), None
    return Candidate(name, "ok", None, build_s=build_s, max_abs_diff=diff,
                     warmup_runs=warmup_runs), engine


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{type(exc).__name__}: {first}"


def _reduced_tolerance() -> float:
    from ppinfer.engines.precision_check import SCORE_TOLERANCE

    return SCORE_TOLERANCE


def _photo_batch(source: ModelSource, batch_size: int) -> np.ndarray:
    """The shipped photo, preprocessed for this model, repeated to the batch size."""
    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import preprocess_image
    from ppinfer.pipeline.sample import sample_image_path

    tensor = preprocess_image(load_image(str(sample_image_path())), source.preprocess)
    return np.ascontiguousarray(np.repeat(tensor[None], batch_size, axis=0), dtype=np.float32)


def _reference_scores(source: ModelSource, config: RunConfig, batch: np.ndarray):
    """(analysis fp32's scores on ``batch``, (that engine, its build seconds)): at fp32 the
    engine is the analysis candidate too, built once."""
    from ppinfer.engines.base import create_engine

    engine = create_engine(REFERENCE, source, replace(config, precision="fp32"))
    start = time.perf_counter()
    engine.ensure_built()
    build_s = time.perf_counter() - start
    return engine.probabilities(engine.execute(batch)), (engine, build_s)


# -- the cache (auto_cache.py reads and writes it) -------------------------------------------


def _read(path: Path, config: RunConfig) -> Choice | None:
    """The cached choice, or None when there is none or the file is not one ppinfer wrote
    (auto_cache.read_choice): measured again then."""
    from ppinfer.engines.base import list_engines

    doc = read_choice(path, config)
    if doc is None or doc["engine"] not in list_engines():  # a plug-in since uninstalled
        return None
    fields = {f for f in Candidate.__dataclass_fields__}
    candidates = [Candidate(**{k: v for k, v in c.items() if k in fields})
                  for c in doc["candidates"]]
    return Choice(doc["engine"], doc["precision"], doc["batch_size"], doc["cpu_threads"],
                  candidates, doc["measured_at"], near_tie=doc["near_tie"], tied=doc["tied"],
                  unsure=doc["unsure"], margin=doc["margin"], margin_over=doc["margin_over"],
                  noise=doc["noise"], rounds=doc["rounds"], stop=doc["stop"],
                  other_cores=doc["other_cores"], timed_s=doc["timed_s"],
                  program=doc.get("program"), cached=True, path=path)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None  # JSON has no inf
