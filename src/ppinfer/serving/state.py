"""What one app holds: the predictor, the batcher, the limits, and the one path every protocol
takes from an image's bytes to its :class:`~ppinfer.pipeline.postprocess.Result`.

Every route goes through :meth:`ServingState.handle`: admission (503 when ``max_queue``
requests are in), the time limit (504), and the protocol's own error envelope for a
:class:`ServeError`. Decoding and preprocessing run in a thread pool with ppinfer's own bounded
decode (:func:`ppinfer.pipeline.decode.decode_image`) and the engine's ``organize``, and the
scores are the engine's ``probabilities``, so an answer equals ``ppinfer predict``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ppinfer.errors import ConfigError, ImageError
from ppinfer.pipeline.decode import decode_image
from ppinfer.pipeline.postprocess import Result, results_from_probabilities
from ppinfer.serving.batcher import Batcher, Overloaded, Stopped, Ticket

DEFAULT_MAX_BODY_BYTES = 20 << 20
"""A request body larger than this is refused (413) before it is read: 20 MiB holds a
base64-encoded 15 MB photo."""


@dataclass(frozen=True)
class ServeOptions:
    """The app's own settings (the model's run options are the predictor's)."""

    max_batch: int = 8
    max_delay_ms: float = 5.0
    max_queue: int = 256
    timeout_s: float = 30.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    allow_urls: bool = False
    name: str | None = None

    def check(self) -> ServeOptions:
        problems = [f"{field} must be at least {low}" for field, low in (
            ("max_batch", 1), ("max_queue", 1), ("max_body_bytes", 1))
            if getattr(self, field) < low]
        if not (0 <= self.max_delay_ms < 60_000):
            problems.append("max_delay_ms must be between 0 and 60000")
        if not (0 < self.timeout_s < 86_400):
            problems.append("timeout_s must be above 0 and under a day")
        if self.max_batch > 256:
            problems.append("max_batch may be at most 256 (memory grows with the batch)")
        if self.name is not None and not _plain_name(self.name):
            problems.append(f"name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if problems:
            raise ConfigError(f"Cannot serve: {'; '.join(problems)}.")
        return self


def _plain_name(name: str) -> bool:
    return 0 < len(name) <= 128 and all(c.isascii() and (c.isalnum() or c in "._-")
                                        for c in name)


class ServeError(Exception):
    """A request that cannot be answered: its HTTP status and one sentence."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class ServingState:
    """One model served: built once by ``create_app`` and shared by every route."""

    def __init__(self, predictor, options: ServeOptions, metrics=None) -> None:
        self.predictor = predictor
        self.engine = predictor.engine
        self.engine.ensure_built()  # a model that cannot run fails here, not on a request
        self.options = options.check()
        self.model_name = options.name or _model_name(predictor)
        self.max_pixels = predictor.max_pixels
        self.max_image_bytes = min(predictor.max_image_bytes, options.max_body_bytes)
        self.metrics = metrics
        self.batcher = Batcher(self._run_batch, max_batch=options.max_batch,
                               max_delay_s=options.max_delay_ms / 1000.0,
                               max_queue=options.max_queue,
                               on_batch=metrics.observe_batch if metrics else None)
        # OpenCV releases the GIL while it decodes and resizes: a few threads overlap.
        workers = max(2, min(4, os.cpu_count() or 1))
        self._decode_pool = ThreadPoolExecutor(workers, thread_name_prefix="ppinfer-decode")
        self._labels: list[str] | None = None

    @property
    def ready(self) -> bool:
        """Taking requests (False while draining for shutdown)."""
        return not self.batcher.draining

    @property
    def top_k(self) -> int:
        return self.engine.config.top_k

    # -- what every route does ---------------------------------------------------------------
    async def handle(self, work: Callable[[Ticket], Awaitable],
                     on_error: Callable[[ServeError], object]):
        """``work(ticket)`` inside admission and the time limit; a :class:`ServeError`
        (raised by ``work`` or here) becomes ``on_error``'s response."""
        try:
            async with self._admitted() as ticket:
                try:
                    return await asyncio.wait_for(work(ticket), self.options.timeout_s)
                except asyncio.TimeoutError:
                    raise ServeError(504, "The request was not answered within the server's "
                                          f"--timeout of {self.options.timeout_s:g} s.") from None
        except ServeError as exc:
            return on_error(exc)

    @contextlib.asynccontextmanager
    async def _admitted(self) -> AsyncIterator[Ticket]:
        try:
            async with self.batcher.admit() as ticket:
                yield ticket
        except Overloaded:
            raise ServeError(503, f"The server is busy: {self.options.max_queue} requests "
                                  "are already waiting; retry in a moment.",
                             {"Retry-After": "1"}) from None
        except Stopped:
            raise ServeError(503, "The server is shutting down.",
                             {"Retry-After": "5", "Connection": "close"}) from None

    async def classify(self, ticket: Ticket, data: bytes, name: str,
                       top_k: int | None = None) -> Result:
        """One image's result: decoded and preprocessed off the loop, then run in a group.
        An image that cannot be read is a 400 naming ``name``."""
        loop = asyncio.get_running_loop()
        try:
            tensor = await loop.run_in_executor(self._decode_pool, self._prepare, data, name)
        except ImageError as exc:
            raise ServeError(400, str(exc)) from None
        try:
            row = await self.batcher.submit(ticket, tensor)
        except Stopped:
            raise ServeError(503, "The server is shutting down.") from None
        except Exception as exc:  # noqa: BLE001 - an engine failure: this request's, in a line
            detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ServeError(500, f"The engine failed on this image ({detail}).") from None
        return self.result(row, name, top_k or self.top_k)

    def result(self, row: np.ndarray, name: str, top_k: int) -> Result:
        """Top-k of one score row, labelled as ``predict`` labels it."""
        if self._labels is None:
            self._labels = self.engine.source.labels_for(row.shape[-1])
        return results_from_probabilities([name], row[None], top_k, self._labels)[0]

    def check_top_k(self, value: object) -> int:
        """A request's top-k: a whole number from 1 (more than the classes gives them all)."""
        if value is None:
            return self.top_k
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 100_000:
            raise ServeError(400, f"topk must be a whole number from 1, not {value!r}.")
        return value

    # -- in threads --------------------------------------------------------------------------
    def _prepare(self, data: bytes, name: str) -> np.ndarray:
        image = decode_image(data, name, max_pixels=self.max_pixels,
                             max_bytes=self.max_image_bytes)
        return self.engine.organize([image])

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        # The same two steps as Engine.analyze: outputs -> scores; top-k is per request.
        return self.engine.probabilities(self.engine.execute(batch))

    async def close(self) -> None:
        await self.batcher.stop(drain=True)
        self._decode_pool.shutdown(wait=False)


def _model_name(predictor) -> str:
    """The card's model name, spelled as a URL path segment (KServe's model name)."""
    name = predictor.source.display_name or "model"
    plain = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)
    return plain[:128] or "model"
