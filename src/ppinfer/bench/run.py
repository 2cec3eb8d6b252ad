"""A benchmark run: models x engines x precisions x batch sizes x threads, one case at a time.

Every configuration goes through :class:`ppinfer.config.RunConfig` (made by the caller's
``make_config``, which resolves it); one the machine, the Paddle build or the engine cannot
run is recorded as skipped with its one-sentence reason, never a crash. Cases run in this
process one after another; each engine is dropped before the next is built.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ppinfer.bench.measure import EngineBenchmark, Measurement, StopRule, cycle_to, gpu_memory_mb
from ppinfer.config import RunConfig
from ppinfer.engines import get_engine, list_engines
from ppinfer.engines.base import precision_problem
from ppinfer.errors import ConfigError, ImageError, PPInferError
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
    precisions: Sequence[str] = ("fp32",)
    cpu_threads: Sequence[int | None] = (None,)
    warmup: int = 5
    stop: StopRule = field(default_factory=StopRule)
    inputs: Sequence[InputItem] | None = None  # None: random input
    end_to_end: bool = False
    baseline: str | None = None  # ENGINE[:PRECISION]; None: onnxruntime:fp32 if run, else first

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
    return [
        Case(m.label, e, p, b, t)
        for m in models for t in settings.cpu_threads for b in settings.batch_sizes
        for p in settings.precisions for e in settings.engines
    ]


def run_bench(models: Sequence[BenchModel], settings: BenchSettings, make_config: MakeConfig,
              on_case: Callable[[int, int, CaseResult], None] | None = None) -> BenchReport:
    started, t0 = time.time(), time.perf_counter()
    todo = cases(models, settings)
    by_label = {m.label: m for m in models}
    results: list[CaseResult] = []
    try:
        for index, case in enumerate(todo):
            result = run_case(by_label[case.model].source, case, settings, make_config)
            results.append(result)
            gc.collect()  # drop the engine before the next one is built
            if on_case is not None:
                on_case(index, len(todo), result)
    except BaseException as exc:  # Ctrl-C or a crash: the finished cases travel with it
        derive(results, settings, reference=lambda r: _fp32_reference(by_label, r, settings,
                                                                    make_config))
        exc.partial_report = BenchReport(  # type: ignore[attr-defined]
            settings, list(models), results, started, time.perf_counter() - t0)
        raise
    derive(results, settings, reference=lambda r: _fp32_reference(by_label, r, settings,
                                                                    make_config))
    return BenchReport(settings, list(models), results, started, time.perf_counter() - t0)


def run_case(source: ModelSource, case: Case, settings: BenchSettings,
             make_config: MakeConfig) -> CaseResult:
    """Measure one case; a case that cannot run comes back skipped, with why."""
    try:
        engine_cls = get_engine(case.engine)
        reason = _cannot_run(engine_cls, source, case.precision)
        if reason:
            return CaseResult(case, "skipped", reason)
        config = make_config(case.batch_size, case.precision, case.cpu_threads)
        engine = engine_cls(source, config)
    except PPInferError as exc:
        return CaseResult(case, "skipped", str(exc))
    result = CaseResult(case, "ok", cpu_threads=engine.config.cpu_threads,
                        device=engine.config.device)
    try:
        result.measurement = measure(engine, source, settings)
    except (ConfigError, ImageError) as exc:
        return CaseResult(case, "skipped", str(exc))
    except PPInferError as exc:
        return CaseResult(case, "failed", str(exc))
    except Exception as exc:  # one broken case must not lose the others' figures
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return CaseResult(case, "failed", f"{type(exc).__name__}: {first}")
    return result


def _cannot_run(engine_cls, source: ModelSource, precision: str) -> str | None:
    if not engine_cls.can_run(source):
        if engine_cls.needs_architecture:
            return (f"{engine_cls.name} builds the architecture from a checkpoint; bench runs "
                    "exported models: use `ppinfer predict --enable-benchmark` for it.")
        kind = source.layout.kind if source.layout else "missing"
        return f"{engine_cls.name} cannot run a {kind} model."
    return precision_problem(engine_cls, source, precision)


def measure(engine, source: ModelSource, settings: BenchSettings) -> Measurement:
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
    measurement = Measurement(build_s, 1000.0 * first_s, settings.warmup, bench.time_engine(batch))
    if settings.end_to_end and settings.inputs:
        measurement.end_to_end = bench.time_end_to_end(settings.inputs)
    measurement.probs = bench.scores(tensors or [batch])
    if tensors:
        measurement.top1 = measurement.probs.argmax(axis=1).tolist()
    measurement.peak_rss_mb = bench.peak_rss_mb()
    measurement.peak_rss_scope = bench.memory.scope
    measurement.rss_before_mb = bench.memory.before_mb
    if engine.config.use_gpu:
        measurement.gpu_memory_mb = gpu_memory_mb(engine.config.gpu_id)
    return measurement


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


def derive(results: Sequence[CaseResult], settings: BenchSettings,
           reference: Callable[[CaseResult], np.ndarray | None] | None = None) -> None:
    """Fill the ratios to the baseline and the agreements with fp32, in place.

    A reduced-precision case is compared with its engine's fp32 case of the same model, batch
    size and threads; when the run has none, ``reference`` computes fp32 scores on the same
    inputs (untimed).
    """
    ok = {(r.case.model, r.case.engine, r.case.precision, r.case.batch_size, r.case.cpu_threads): r
          for r in results if r.status == "ok"}
    base_engine, base_precision = settings.resolved_baseline()
    for (model, engine, precision, batch, threads), r in ok.items():
        base = ok.get((model, base_engine, base_precision, batch, threads))
        fp32 = ok.get((model, engine, "fp32", batch, threads))
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
