"""A benchmark run: models x engines x precisions x batch sizes x threads, timed in rounds.

Every configuration goes through :class:`ppinfer.config.RunConfig` (made by the caller's
``make_config``, which resolves it); one the machine, the Paddle build or the engine cannot
run is recorded as skipped with its one-sentence reason, never a crash.

Each configuration is built, run once (timed apart) and warmed up in turn; then the timed
batches are shared out over ``rounds`` interleaved rounds, every configuration timing one slice
per round (as ``--engine auto`` times its candidates). A machine that gets busy mid-run then
slows every configuration alike, so the ratios between them stay honest: run one after the
other, the same ONNX Runtime configuration measured anywhere from 9.7 to 43.3 img/s on a loaded
VM. The engines stay built until the last round; peak memory is each configuration's own
(``rss_before_mb`` says what the earlier ones held).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ppinfer.bench.measure import (
    EngineBenchmark,
    Measurement,
    StopRule,
    cycle_to,
    gpu_memory_mb,
    merged,
)
from ppinfer.config import RunConfig
from ppinfer.config.run import model_precision
from ppinfer.engines import get_engine, list_engines
from ppinfer.engines.base import precision_problem
from ppinfer.errors import ImageError, PPInferError
from ppinfer.modelfiles.source import ModelSource
from ppinfer.pipeline.inputs import InputItem

MakeConfig = Callable[[int, str, "int | None"], RunConfig]


@dataclass(frozen=True)
class BenchModel:
    label: str
    source: ModelSource


@dataclass(frozen=True)
class Case:
    model: str
    engine: str
    precision: str
    batch_size: int
    cpu_threads: int | None  # as asked; None = all cores

    def describe(self) -> str:
        threads = "" if self.cpu_threads is None else f" t{self.cpu_threads}"
        return f"{self.model} {self.engine} {self.precision} b{self.batch_size}{threads}"


@dataclass
class CaseResult:
    case: Case
    status: str  # ok | skipped | failed
    reason: str | None = None
    cpu_threads: int | None = None  # as resolved
    device: str | None = None
    measurement: Measurement | None = None
    ratio: float | None = None  # engine throughput / the baseline's, same model, batch, threads
    e2e_ratio: float | None = None
    top1_vs_fp32: float | None = None  # agreement with the same engine's fp32
    score_diff_vs_fp32: float | None = None  # largest |score difference| to that fp32
    top1_vs_baseline: float | None = None


@dataclass
class BenchSettings:
    engines: Sequence[str]
    batch_sizes: Sequence[int] = (1,)
    precisions: Sequence[str | None] = (None,)  # None: each model's own (int8 if quantized)
    cpu_threads: Sequence[int | None] = (None,)
    warmup: int = 5
    stop: StopRule = field(default_factory=StopRule)
    inputs: Sequence[InputItem] | None = None  # None: random input
    end_to_end: bool = False
    baseline: str | None = None  # ENGINE[:PRECISION]; None: onnxruntime:fp32 if run, else first
    rounds: int = 3  # interleaved timing rounds the timed batches are shared out over
    # False: ``engines`` are the default (none named), and a model ppinfer quantize wrote runs
    # on the engine it was made for alone, as predict runs it
    engines_named: bool = True

    def resolved_baseline(self) -> tuple[str, str]:
        if self.baseline:
            engine, _, precision = self.baseline.partition(":")
            return engine, precision or "fp32"
        if "onnxruntime" in self.engines:
            return "onnxruntime", "fp32"
        return self.engines[0], "fp32"


@dataclass
class BenchReport:
    settings: BenchSettings
    models: list[BenchModel]
    results: list[CaseResult]
    started: float
    seconds: float


def expand_engines(spec: str | Sequence[str]) -> list[str]:
    """``all`` or a comma list -> engine names, each checked against the registry."""
    names = [n.strip() for n in spec.split(",")] if isinstance(spec, str) else list(spec)
    if names == ["all"]:
        return list_engines()
    for name in names:
        get_engine(name)  # UnknownNameError lists the valid names
    return list(dict.fromkeys(names))


def cases(models: Sequence[BenchModel], settings: BenchSettings) -> list[Case]:
    """Every combination; the engines vary fastest, so the configurations a ratio compares
    run one after another (a machine that gets busier affects them alike)."""
    def engines(m: BenchModel) -> Sequence[str]:
        made_for = m.source.quantized_for
        return settings.engines if settings.engines_named or not made_for else [made_for]

    return [
        Case(m.label, e, p or model_precision(m.source.quantized_for), b, t)
        for m in models for t in settings.cpu_threads for b in settings.batch_sizes
        for p in settings.precisions for e in engines(m)
    ]


def run_bench(models: Sequence[BenchModel], settings: BenchSettings, make_config: MakeConfig,
              on_case: Callable[[int, int, CaseResult], None] | None = None) -> BenchReport:
    started, t0 = time.time(), time.perf_counter()
    todo = cases(models, settings)
    by_label = {m.label: m for m in models}
    results: list[CaseResult] = []
    timed: list[_Timed] = []
    try:
        for case in todo:
            result, prepared = prepare_case(by_label[case.model].source, case, settings,
                                            make_config)
            results.append(result)
            if prepared is not None:
                timed.append(prepared)
            elif on_case is not None:  # skipped: said at once
                on_case(len(results) - 1, len(todo), result)

        def done(result: CaseResult) -> None:
            if on_case is not None:
                on_case(results.index(result), len(todo), result)

        _time_in_rounds(timed, settings, on_done=done)
    except BaseException as exc:  # Ctrl-C or a crash: the finished cases travel with it
        finished = [r for r in results if r.status != "ok" or r.measurement is not None]
        derive(finished, settings, reference=lambda r: _fp32_reference(by_label, r, settings,
                                                                     make_config),
               float_models=float_models(models))
        exc.partial_report = BenchReport(  # type: ignore[attr-defined]
            settings, list(models), finished, started, time.perf_counter() - t0)
        raise
    finally:
        timed.clear()
        gc.collect()  # drop the engines
    derive(results, settings, reference=lambda r: _fp32_reference(by_label, r, settings,
                                                                    make_config),
           float_models=float_models(models))
    return BenchReport(settings, list(models), results, started, time.perf_counter() - t0)


@dataclass
class _Timed:
    """A configuration built and warmed up, its slices being timed round by round."""

    result: CaseResult
    bench: EngineBenchmark
    batch: np.ndarray
    tensors: list[np.ndarray] | None
    start: Measurement
    engine_slices: list = field(default_factory=list)
    e2e_slices: list = field(default_factory=list)


def run_case(source: ModelSource, case: Case, settings: BenchSettings,
             make_config: MakeConfig) -> CaseResult:
    """Measure one case on its own; a case that cannot run comes back skipped, with why."""
    result, prepared = prepare_case(source, case, settings, make_config)
    if prepared is not None:
        _time_in_rounds([prepared], settings)
    return result


def prepare_case(source: ModelSource, case: Case, settings: BenchSettings,
                 make_config: MakeConfig) -> tuple[CaseResult, _Timed | None]:
    """Build one case, run it once and warm it up; a case that cannot run comes back
    skipped, with why (and no _Timed)."""
    try:
        engine_cls = get_engine(case.engine)
        reason = _cannot_run(engine_cls, source, case.precision)
        if reason:
            return CaseResult(case, "skipped", reason), None
        config = make_config(case.batch_size, case.precision, case.cpu_threads)
        engine = engine_cls(source, config)
    except PPInferError as exc:
        return CaseResult(case, "skipped", str(exc)), None
    result = CaseResult(case, "ok", cpu_threads=engine.config.cpu_threads,
                        device=engine.config.device)
    return _guarded(result, lambda: _prepare(engine, source, settings, result))


def _guarded(result: CaseResult, work: Callable[[], _Timed | None]
             ) -> tuple[CaseResult, _Timed | None]:
    """``work()``, with what it raises recorded on ``result`` (one broken case must not lose
    the others' figures)."""
    try:
        return result, work()
    except PPInferError as exc:  # this engine cannot run this model here: as --engine all says
        result.status, result.reason = "skipped", str(exc)
    except Exception as exc:  # a bug: the run exits 1
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        result.status, result.reason = "failed", f"{type(exc).__name__}: {first}"
    result.measurement = None
    return result, None


def _prepare(engine, source: ModelSource, settings: BenchSettings, result: CaseResult) -> _Timed:
    bench = EngineBenchmark(engine, settings.stop, settings.warmup)
    build_s = bench.build()
    tensors = _real_tensors(engine, settings.inputs) if settings.inputs else None
    size = engine.config.batch_size
    if tensors:
        batch = np.concatenate(cycle_to(tensors, size))
    else:
        shape = (size, *source.input_shape)
        batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    first_s = bench.first_run(batch)
    for _ in range(settings.warmup):
        engine.execute(batch)
    start = Measurement(build_s, 1000.0 * first_s, settings.warmup, engine=None)
    start.peak_rss_mb = bench.peak_rss_mb()  # build and first run: where the memory goes
    start.peak_rss_scope = bench.memory.scope
    start.rss_before_mb = bench.memory.before_mb
    if engine.config.use_gpu:
        start.gpu_memory_mb = gpu_memory_mb(engine.config.gpu_id)
    return _Timed(result, bench, batch, tensors, start)


def _time_in_rounds(timed: list[_Timed], settings: BenchSettings,
                    on_done: Callable[[CaseResult], None] | None = None) -> None:
    """Every configuration's timed slices, interleaved round by round; a configuration's
    figures are made (and ``on_done`` called) as soon as its last slice is timed."""
    slices = settings.stop.slices(settings.rounds if len(timed) > 1 else 1)
    end_to_end = settings.end_to_end and settings.inputs
    # One untimed batch before a slice: the previous configuration's engine had the caches.
    rewarm = 1 if len(timed) > 1 else 0
    for number, stop in enumerate(slices, start=1):
        for t in timed:
            if t.result.status == "ok":
                _guarded(t.result, lambda t=t, stop=stop: t.engine_slices.append(
                    t.bench.time_engine(t.batch, stop, warmup=rewarm)))
            if end_to_end and t.result.status == "ok":
                _guarded(t.result, lambda t=t, stop=stop: t.e2e_slices.append(
                    t.bench.time_end_to_end(settings.inputs, stop, warmup=rewarm)))
            if number == len(slices):
                if t.result.status == "ok":
                    _guarded(t.result, lambda t=t: _finish(t))
                if on_done is not None:
                    on_done(t.result)


def _finish(t: _Timed) -> None:
    m = t.start
    m.engine = merged(t.engine_slices)
    if t.e2e_slices:
        m.end_to_end = merged(t.e2e_slices)
    m.probs = t.bench.scores(t.tensors or [t.batch])
    if t.tensors:
        m.top1 = m.probs.argmax(axis=1).tolist()
    t.result.measurement = m


def _cannot_run(engine_cls, source: ModelSource, precision: str) -> str | None:
    if not engine_cls.can_run(source):
        if engine_cls.needs_architecture:
            return (f"{engine_cls.name} builds the architecture from a checkpoint; bench runs "
                    "exported models: use `ppinfer predict --enable-benchmark` for it.")
        from ppinfer.modelfiles.formats import kind_phrase

        kind = source.layout.kind if source.layout else "missing"
        return f"{engine_cls.name} cannot run {kind_phrase(kind)}."
    return precision_problem(engine_cls, source, precision)


def _real_tensors(engine, items: Sequence[InputItem]) -> list[np.ndarray]:
    from ppinfer.pipeline.decode import load_image

    tensors = []
    for item in items:
        if item.error is None:
            try:
                tensors.append(engine.organize([load_image(item.path)]))
            except ImageError:
                continue
    if not tensors:
        raise ImageError("None of the --input images could be read: check the path.")
    return tensors


def float_models(models: Sequence[BenchModel]) -> dict[str, str]:
    """int8 model label -> the label of the float model it was quantized from, for those whose
    float model is in the run too."""
    by_root = {m.source.layout.root.resolve(): m.label for m in models
               if m.source.layout is not None and not m.source.quantized_for}
    pairs = {}
    for m in models:
        made_from = m.source.float_model
        if m.source.quantized_for and made_from is not None and made_from.resolve() in by_root:
            pairs[m.label] = by_root[made_from.resolve()]
    return pairs


def derive(results: Sequence[CaseResult], settings: BenchSettings,
           reference: Callable[[CaseResult], np.ndarray | None] | None = None,
           float_models: dict[str, str] | None = None) -> None:
    """Fill the ratios to the baseline and the agreements with fp32, in place.

    An int8 model ``ppinfer quantize`` wrote runs no baseline row of its own (it runs int8 on
    its engine only): its ratio is to its float model's baseline row when that model is in the
    run (``float_models``: int8 label -> float label), and its scores are compared with that
    model's fp32 on its engine. A reduced-precision case is compared with its engine's fp32 case
    of the same model, batch size and threads; when the run has none, ``reference`` computes
    fp32 scores on the same inputs (untimed).
    """
    ok = {(r.case.model, r.case.engine, r.case.precision, r.case.batch_size, r.case.cpu_threads): r
          for r in results if r.status == "ok"}
    base_engine, base_precision = settings.resolved_baseline()
    float_models = float_models or {}
    for (model, engine, precision, batch, threads), r in ok.items():
        base = ok.get((model, base_engine, base_precision, batch, threads)) or ok.get(
            (float_models.get(model), base_engine, base_precision, batch, threads))
        fp32 = ok.get((model, engine, "fp32", batch, threads)) or ok.get(
            (float_models.get(model), engine, "fp32", batch, threads))  # the same inputs
        m = r.measurement
        if base is not None:
            r.ratio = _ratio(m.engine.throughput, base.measurement.engine.throughput)
            if m.end_to_end and base.measurement.end_to_end:
                r.e2e_ratio = _ratio(m.end_to_end.throughput,
                                     base.measurement.end_to_end.throughput)
            r.top1_vs_baseline = agreement(m.top1, base.measurement.top1)
        ref = fp32.measurement.probs if fp32 is not None else None
        if ref is None and precision != "fp32" and reference is not None:
            ref = reference(r)
        if ref is not None and m.probs is not None and ref.shape == m.probs.shape:
            r.top1_vs_fp32 = float(np.mean(m.probs.argmax(1) == ref.argmax(1)))
            r.score_diff_vs_fp32 = float(np.max(np.abs(m.probs - ref)))


def _fp32_reference(models: dict[str, BenchModel], r: CaseResult, settings: BenchSettings,
                    make_config: MakeConfig) -> np.ndarray | None:
    """fp32 scores of ``r``'s engine on the inputs ``r`` was measured on (untimed); None when
    that cannot run."""
    from ppinfer.bench.measure import engine_scores

    source = models[r.case.model].source
    try:
        config = make_config(r.case.batch_size, "fp32", r.case.cpu_threads)
        engine = get_engine(r.case.engine)(source, config)
        engine.ensure_built()
        if settings.inputs:
            tensors = _real_tensors(engine, settings.inputs)
        else:
            shape = (r.case.batch_size, *source.input_shape)
            tensors = [np.random.default_rng(0).standard_normal(shape).astype(np.float32)]
        return engine_scores(engine, tensors)
    except PPInferError:
        return None


def _ratio(value: float, base: float) -> float | None:
    return value / base if base > 0 else None


def agreement(a: Sequence[int] | None, b: Sequence[int] | None) -> float | None:
    """Share of images whose top-1 class is the same in ``a`` and ``b``."""
    if not a or not b or len(a) != len(b):
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)
