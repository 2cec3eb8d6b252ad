"""``predict --engine all``: every engine that can run the model, on the same images, compared.

Each engine's full score vectors are compared with the reference engine's (``analysis``): the
largest absolute difference is what tells a user the engines (and so an export) agree. With a
reduced precision (``--precision bf16``) every engine that runs it is compared with analysis at
fp32 (run first, as the reference), within :data:`ppinfer.engines.precision_check.SCORE_TOLERANCE`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ppinfer.config import RunConfig
from ppinfer.engines.base import ENGINES, create_engine, load_plugins
from ppinfer.errors import ImageError, PPInferError
from ppinfer.modelfiles.source import ModelSource, with_checkpoint
from ppinfer.pipeline.decode import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS, load_image
from ppinfer.pipeline.inputs import InputItem
from ppinfer.pipeline.postprocess import Result

REFERENCE_ENGINE = "analysis"
DEFAULT_TOLERANCE = 1e-4


@dataclass
class EngineRun:
    engine: str
    results: list[Result] = field(default_factory=list)
    probs: np.ndarray | None = None
    build_seconds: float = 0.0
    seconds: float = 0.0  # organize + execute over all images
    max_abs_diff: float | None = None
    skipped: str | None = None  # why the engine could not run this model
    precision: str = "fp32"
    top1_agree: int | None = None  # images whose top-1 class is the reference engine's

    @property
    def top1_share(self) -> float:
        """Share of images whose top-1 is the reference's (1.0 when not compared)."""
        if self.top1_agree is None or not self.results:
            return 1.0
        return self.top1_agree / len(self.results)

    @property
    def ms_per_image(self) -> float | None:
        if self.probs is None or not len(self.probs):
            return None
        return 1000.0 * self.seconds / len(self.probs)

    def to_json_dict(self) -> dict:
        if self.skipped:
            return {"engine": self.engine, "precision": self.precision, "skipped": self.skipped}
        return {
            "engine": self.engine,
            "precision": self.precision,
            "top1": [r.class_ids[0] for r in self.results],
            "top1_labels": [r.label_names[0] for r in self.results],
            "build_seconds": round(self.build_seconds, 4),
            "ms_per_image": round(self.ms_per_image or 0.0, 3),
            "max_abs_diff": self.max_abs_diff,
            "images": len(self.results),
            "top1_agree": self.top1_agree,
        }


@dataclass
class ParityReport:
    runs: list[EngineRun]
    reference: str | None
    tolerance: float
    errors: list[Result]  # images that could not be read
    reduced_tolerance: float = 0.05  # for runs in a reduced precision, against fp32
    # the reference run's precision: fp32, or (a quantized model no engine runs at fp32) the
    # precision of the first engine that ran, compared with itself
    reference_precision: str = "fp32"

    def tolerance_for(self, run: EngineRun) -> float:
        return self.tolerance if run.precision == "fp32" else max(self.tolerance,
                                                                  self.reduced_tolerance)

    @property
    def disagreeing(self) -> list[EngineRun]:
        return [r for r in self.runs if r.max_abs_diff is not None and (
            r.max_abs_diff > self.tolerance_for(r) or r.top1_share < 1.0)]


def _engine_sources(source: ModelSource) -> list[tuple[str, ModelSource | None, str | None]]:
    """(engine, the source it runs, or None with the reason it cannot)."""
    load_plugins()
    out = []
    for name in sorted(ENGINES, key=lambda n: (n != REFERENCE_ENGINE, n)):
        cls = ENGINES[name]
        if cls.needs_architecture:
            variant = with_checkpoint(source)
            if variant is None:
                out.append((name, None, "needs --model-name and a checkpoint (-p)"))
                continue
            out.append((name, variant, None))
        elif source.layout is not None and source.layout.kind in cls.layouts:
            out.append((name, source, None))
        else:
            kind = source.layout.kind if source.layout else "no inference model"
            out.append((name, None, f"cannot run {kind}"))
    return out


def _decode(items: Sequence[InputItem], max_pixels: int, max_bytes: int):
    images, names, errors = [], [], []
    for item in items:
        if item.error is not None:
            errors.append(Result(item.path, error=item.error))
            continue
        try:
            images.append(load_image(item.path, max_pixels=max_pixels, max_bytes=max_bytes))
            names.append(item.path)
        except ImageError as exc:
            errors.append(Result(item.path, error=str(exc)))
    return images, names, errors


def _run_one(name: str, source: ModelSource, config: RunConfig, images, names) -> EngineRun:
    run = EngineRun(name, precision=config.precision)
    engine = create_engine(name, source, config)
    start = time.perf_counter()
    engine.ensure_built()
    run.build_seconds = time.perf_counter() - start
    chunks = []
    size = config.batch_size
    if images:  # a first run creates kernels (10x a warm one): not the engine's speed
        engine.execute(engine.organize(images[:size]))
    for i in range(0, len(images), size):
        start = time.perf_counter()
        outputs = engine.execute(engine.organize(images[i : i + size]))
        run.seconds += time.perf_counter() - start
        probs = engine.probabilities(outputs)
        chunks.append(probs)
        run.results += engine.results(probs, names[i : i + size])
    run.probs = np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)
    return run


def compare_engines(
    source: ModelSource,
    config: RunConfig,
    items: Sequence[InputItem],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
) -> ParityReport:
    from ppinfer.engines.base import precision_problem
    from ppinfer.engines.precision_check import SCORE_TOLERANCE

    images, names, errors = _decode(items, max_pixels, max_image_bytes)
    runs: list[EngineRun] = []
    reduced = config.precision != "fp32"
    if reduced and images:  # the reference: analysis at fp32
        runs.append(_try_run(REFERENCE_ENGINE, source, replace(config, precision="fp32"),
                             images, names))
    for name, variant, reason in _engine_sources(source):
        if variant is not None and reduced:
            precisions = ENGINES[name].precisions
            reason = (f"runs {', '.join(sorted(precisions))} only"
                      if config.precision not in precisions
                      else precision_problem(ENGINES[name], variant, config.precision))
        if variant is None or reason:
            runs.append(EngineRun(name, skipped=reason, precision=config.precision))
        elif not images:
            runs.append(EngineRun(name, skipped="no readable images"))
        else:
            runs.append(_try_run(name, variant, config, images, names))
    ran = [r for r in runs if r.probs is not None]
    reference = next((r for r in ran if r.engine == REFERENCE_ENGINE), ran[0] if ran else None)
    for run in ran:
        if run is not reference and run.probs.shape == reference.probs.shape:
            run.max_abs_diff = float(np.max(np.abs(run.probs - reference.probs)))
            run.top1_agree = sum(a.class_ids[0] == b.class_ids[0]
                                 for a, b in zip(run.results, reference.results))
        elif run is not reference:
            run.skipped = (f"outputs {list(run.probs.shape)} do not match "
                           f"{reference.engine}'s {list(reference.probs.shape)}")
    if reference is not None:
        reference.max_abs_diff = 0.0
        reference.top1_agree = len(reference.results)
    return ParityReport(runs, reference.engine if reference else None, tolerance, errors,
                        reduced_tolerance=SCORE_TOLERANCE,
                        reference_precision=reference.precision if reference else "fp32")


def _try_run(name: str, source: ModelSource, config: RunConfig, images, names) -> EngineRun:
    try:
        return _run_one(name, source, config, images, names)
    except PPInferError as exc:
        return EngineRun(name, skipped=str(exc), precision=config.precision)
