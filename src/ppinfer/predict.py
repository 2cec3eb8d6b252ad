"""Run an engine over input files: decode, batch, predict; per-image errors never stop the run.

Decoding and preprocessing run a few batches ahead of inference, so the two overlap, in a
small thread pool: OpenCV releases the GIL, and so do ONNX Runtime and Paddle 2.6 while they
infer. Paddle 3's ``predictor.run()`` keeps the GIL, so there decoding progresses between
batches and inside OpenCV calls; ``PPINFER_DECODE=processes`` decodes in worker processes
instead (:mod:`ppinfer.pipeline.decode_processes`), which measured no faster on 2 cores
(BENCHMARKS.md). Stage times are measured here, around the engine's steps, not inside them;
preprocess time is summed over the workers, so with overlap the stages add up to more than the
wall time.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ppinfer.engines.base import Engine
from ppinfer.errors import ConfigError, ImageError
from ppinfer.pipeline.arrays import ArrayItem
from ppinfer.pipeline.decode import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS, load_image
from ppinfer.pipeline.inputs import InputItem
from ppinfer.pipeline.postprocess import Result
from ppinfer.pipeline.preprocess import Loaded as _Loaded

STAGES = ("preprocess", "inference", "postprocess")
PREFETCH_BATCHES = 2  # batches decoded ahead of the one being inferred
MAX_WORKERS = 4
DECODE_MODES = ("threads", "processes")


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

    def describe(self, what: str) -> str:
        """``--enable-benchmark``'s line: mean ms per image for each stage, ``what`` saying
        which engine and batch size."""
        ms = self.ms_per_image()
        images = f"{self.images} image" + ("" if self.images == 1 else "s")
        return (f"Mean per image over {images} ({what}): preprocess "
                f"{ms['preprocess']:.2f} ms, inference {ms['inference']:.2f} ms, postprocess "
                f"{ms['postprocess']:.2f} ms.")


@dataclass
class PredictSummary:
    results: int = 0
    errors: int = 0
    timer: StageTimer = field(default_factory=StageTimer)


def _batches(items: Iterable[InputItem | ArrayItem], size: int) -> Iterator[list]:
    """``items`` in lists of ``size``, read as they are needed (a generator is never read
    ahead of the batches in flight)."""
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _load(
    engine: Engine, item: InputItem | ArrayItem, max_pixels: int, max_bytes: int
) -> _Loaded:
    """Decode (or check, for an array) and preprocess one image in a worker thread; OpenCV
    releases the GIL."""
    if item.error is not None:
        return _Loaded(error=item.error)
    start = time.perf_counter()
    try:
        if isinstance(item, ArrayItem):
            image = item.load(max_pixels)
        else:
            image = load_image(item.path, max_pixels=max_pixels, max_bytes=max_bytes)
    except ImageError as exc:
        return _Loaded(error=str(exc), seconds=time.perf_counter() - start)
    tensor = engine.organize([image])
    return _Loaded(tensor=tensor, seconds=time.perf_counter() - start)


def preprocess_workers() -> int:
    """Threads (or processes) that decode and preprocess ahead of inference."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def decode_in_processes(engine: Engine) -> bool:
    """Whether this run decodes in worker processes: ``PPINFER_DECODE=processes``."""
    mode = os.environ.get("PPINFER_DECODE", "threads").strip().lower() or "threads"
    if mode not in DECODE_MODES:
        raise ConfigError(f"PPINFER_DECODE={mode!r} is not one of {', '.join(DECODE_MODES)}.")
    if mode == "threads" or not sys.platform.startswith("linux"):
        return False
    # An engine with preprocessing of its own decodes in threads, where its organize() runs.
    return getattr(engine.organize, "__func__", None) is Engine.organize


class _Ticket:
    """A decode queued in the worker processes, read like a Future."""

    def __init__(self, decoder, seq: int) -> None:
        self.decoder, self.seq = decoder, seq

    def result(self) -> _Loaded:
        return self.decoder.result(self.seq)


def _process_decoder(engine: Engine, max_pixels: int, max_bytes: int):
    """The shared worker-process decoder for this run, locked, or None to use threads."""
    if not decode_in_processes(engine):
        return None
    from ppinfer.pipeline.decode_processes import shared_decoder

    slots = (PREFETCH_BATCHES + 2) * engine.config.batch_size
    try:
        decoder = shared_decoder(engine.source.preprocess, (1, *engine.source.input_shape),
                                 slots, preprocess_workers(), max_pixels, max_bytes)
    except OSError:
        return None  # workers cannot start here: threads do the work
    return decoder  # locked for this run; None while another thread's run uses it


def run_predictions(
    engine: Engine,
    items: Iterable[InputItem | ArrayItem],
    on_result: Callable[[Result], None],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    on_batch: Callable[[int], None] | None = None,
) -> PredictSummary:
    """Predict every item, calling ``on_result`` per image in input order."""
    summary = PredictSummary()
    for result in iter_predictions(engine, items, max_pixels=max_pixels,
                                   max_image_bytes=max_image_bytes, summary=summary,
                                   on_batch=on_batch):
        on_result(result)
    return summary


def iter_predictions(
    engine: Engine,
    items: Iterable[InputItem | ArrayItem],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    summary: PredictSummary | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[Result]:
    """Yield every item's result in input order; counts and stage times go to ``summary``.

    Worker threads decode and preprocess up to :data:`PREFETCH_BATCHES` batches ahead while
    this thread runs inference on the current one. The engine's ``organize`` runs once per
    image there, and a batch is the concatenation of its images' arrays. ``items`` is read
    only as far as those batches reach, so a generator streams with bounded memory (an
    endless one too); the decode worker processes, when asked for, start with the first
    path. Closing the generator early stops the workers.
    """
    engine.ensure_built()
    summary = summary if summary is not None else PredictSummary()
    chunks = _batches(items, engine.config.batch_size)
    pool = ThreadPoolExecutor(preprocess_workers(), thread_name_prefix="ppinfer-preprocess")
    decoder, asked = None, False

    def submit(item: InputItem | ArrayItem) -> Future[_Loaded] | _Ticket:
        nonlocal decoder, asked
        if isinstance(item, InputItem) and item.error is None:
            if not asked:
                decoder, asked = _process_decoder(engine, max_pixels, max_image_bytes), True
            if decoder is not None:
                return _Ticket(decoder, decoder.submit(item.path))
        return pool.submit(_load, engine, item, max_pixels, max_image_bytes)

    pending: deque[tuple[list, list[Future[_Loaded] | _Ticket]]] = deque()
    try:
        while True:
            while len(pending) <= PREFETCH_BATCHES:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                pending.append((chunk, [submit(item) for item in chunk]))
            if not pending:
                break
            chunk, futures = pending.popleft()
            loaded = [f.result() for f in futures]
            del futures
            yield from _predict_chunk(engine, chunk, loaded, summary)
            if on_batch is not None:
                on_batch(len(chunk))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        if decoder is not None:
            decoder.discard_outstanding()
            decoder.lock.release()


def _predict_chunk(engine: Engine, chunk: Sequence[InputItem | ArrayItem],
                   loaded: list[_Loaded], summary: PredictSummary) -> Iterator[Result]:
    timer = summary.timer
    slots: list[Result | None] = [None] * len(chunk)
    tensors, names, positions = [], [], []
    for i, (item, one) in enumerate(zip(chunk, loaded)):
        timer.seconds["preprocess"] += one.seconds
        if one.error is not None:
            slots[i] = Result(item.path, error=one.error)
            continue
        tensors.append(one.tensor)
        names.append(item.path)
        positions.append(i)
    if tensors:
        with timer.stage("preprocess"):
            batch = tensors[0] if len(tensors) == 1 else np.concatenate(tensors)
        with timer.stage("inference"):
            outputs = engine.execute(batch)
        with timer.stage("postprocess"):
            for i, result in zip(positions, engine.analyze(outputs, names)):
                slots[i] = result
        timer.images += len(tensors)
    for result in slots:
        if result.error is not None:
            summary.errors += 1
        else:
            summary.results += 1
        yield result
