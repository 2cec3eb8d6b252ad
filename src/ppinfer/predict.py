"""Run an engine over input files: decode, batch, predict; per-image errors never stop the run.

Stage times are measured here, around the engine's steps, not inside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from ppinfer.engines.base import Engine
from ppinfer.errors import ImageError
from ppinfer.pipeline.inputs import InputItem
from ppinfer.pipeline.postprocess import Result
from ppinfer.pipeline.preprocess import DEFAULT_MAX_PIXELS, load_image

STAGES = ("preprocess", "inference", "postprocess")


@dataclass
class StageTimer:
    """Seconds spent per stage, and how many images went through."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    images: int = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def ms_per_image(self) -> dict[str, float]:
        n = max(self.images, 1)
        return {name: 1000.0 * s / n for name, s in self.seconds.items()}


@dataclass
class PredictSummary:
    results: int = 0
    errors: int = 0
    timer: StageTimer = field(default_factory=StageTimer)


def _batches(items: Sequence[InputItem], size: int) -> Iterator[Sequence[InputItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_predictions(
    engine: Engine,
    items: Sequence[InputItem],
    on_result: Callable[[Result], None],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    on_batch: Callable[[int], None] | None = None,
) -> PredictSummary:
    """Predict every item, calling ``on_result`` per image in input order."""
    engine.ensure_built()
    summary = PredictSummary()
    timer = summary.timer
    for chunk in _batches(items, engine.config.batch_size):
        slots: list[Result | None] = [None] * len(chunk)
        images, names, positions = [], [], []
        with timer.stage("preprocess"):
            for i, item in enumerate(chunk):
                if item.error is not None:
                    slots[i] = Result(item.path, error=item.error)
                    continue
                try:
                    images.append(load_image(item.path, max_pixels=max_pixels))
                except ImageError as exc:
                    slots[i] = Result(item.path, error=str(exc))
                    continue
                names.append(item.path)
                positions.append(i)
            batch = engine.organize(images) if images else None
        if batch is not None:
            with timer.stage("inference"):
                outputs = engine.execute(batch)
            with timer.stage("postprocess"):
                for i, result in zip(positions, engine.analyze(outputs, names)):
                    slots[i] = result
            timer.images += len(images)
        for result in slots:
            if result.error is not None:
                summary.errors += 1
            else:
                summary.results += 1
            on_result(result)
        if on_batch is not None:
            on_batch(len(chunk))
    return summary
