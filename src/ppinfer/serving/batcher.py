"""Dynamic batching: requests that arrive within ``max_delay`` of each other share one engine
call, up to ``max_batch`` images.

One asyncio task takes the first waiting image, then whatever else arrives until the delay is
spent or the batch is full, and runs the engine once for the group in a thread of its own, so
the event loop keeps accepting and decoding while the engine works. Each request waits on its
own future and gets its own row of scores; a request that gave up (its client's timeout) is
left out of the next group. A group the engine fails is run again image by image, so an image
the engine cannot take fails its own request only. The queue is bounded (``max_queue``): a
full queue is refused at once rather than holding memory for requests that would time out
anyway. Nothing here knows
HTTP: a Ray Serve replica can hold one of these as well as the local server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ppinfer.errors import PPInferError


class QueueFull(Exception):
    """The batcher holds ``max_queue`` images already: ask again later."""


class EngineFailed(PPInferError):
    """The engine raised on this image (alone, after its group failed)."""


class Batcher:
    """Groups single-image tensors into engine calls. ``infer`` maps a [N, C, H, W] batch to
    [N, classes] scores (the engine's execute + probabilities)."""

    def __init__(self, infer: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 8,
                 max_delay_s: float = 0.005, max_queue: int = 256,
                 on_batch: Callable[[int], None] | None = None,
                 coming: Callable[[], int] = lambda: 0) -> None:
        self.infer = infer
        # requests accepted but not yet queued (decoding): worth waiting for; with none, a
        # lone request runs at once instead of waiting out the delay for company
        self.coming = coming
        self.max_batch, self.max_delay_s, self.max_queue = max_batch, max_delay_s, max_queue
        self.on_batch = on_batch
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._engine_thread = ThreadPoolExecutor(1, thread_name_prefix="ppinfer-engine")
        self._busy = 0  # images in the engine right now

    @property
    def depth(self) -> int:
        """Images waiting or in the engine."""
        return (self._queue.qsize() if self._queue is not None else 0) + self._busy

    def start(self) -> None:
        """Start grouping (inside the running event loop)."""
        self._queue = asyncio.Queue(self.max_queue)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued and in the engine, then stop."""
        if self._queue is not None:
            while self.depth:
                await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with _suppress_cancel():
                await self._task
        self._engine_thread.shutdown(wait=True)

    def close(self) -> None:
        """End the engine thread without draining (its event loop is gone)."""
        self._engine_thread.shutdown(wait=False, cancel_futures=True)

    async def submit(self, tensor: np.ndarray) -> np.ndarray:
        """Scores for one preprocessed image ([1, C, H, W]): its row of the group's output."""
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((tensor, future))
        except asyncio.QueueFull:
            raise QueueFull(f"{self.max_queue} images are already waiting") from None
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = await self._gather(loop)
            if not group:
                continue
            self._busy = len(group)
            try:
                tensors = [tensor for tensor, _ in group]
                rows = await loop.run_in_executor(self._engine_thread, self._infer_group, tensors)
            except Exception as exc:  # not the engine (it is caught per image): all hear why
                rows = [exc] * len(group)
            finally:
                self._busy = 0
            for row, (_, future) in zip(rows, group):
                if future.done():
                    continue
                if isinstance(row, BaseException):
                    future.set_exception(row)
                else:
                    future.set_result(row)
            if self.on_batch is not None:
                self.on_batch(len(group))

    def _infer_group(self, tensors: list[np.ndarray]) -> list:
        """In the engine thread: each tensor's row of scores, or the exception its image alone
        raised when the group's call failed."""
        try:
            return list(self.infer(np.concatenate(tensors)))
        except Exception as exc:  # noqa: BLE001 - whatever the engine raised
            if len(tensors) == 1:
                return [_failure(exc)]
        rows: list = []
        for tensor in tensors:
            try:
                rows.append(self.infer(tensor)[0])
            except Exception as exc:  # noqa: BLE001
                rows.append(_failure(exc))
        return rows

    async def _gather(self, loop) -> list:
        """The first waiting image and those that come within the delay, up to max_batch (no
        waiting when no other request is on its way); requests given up on are dropped."""
        group = [await self._queue.get()]
        deadline = loop.time() + self.max_delay_s
        while len(group) < self.max_batch:
            if not self._queue.empty():
                group.append(self._queue.get_nowait())
                continue
            if not self.coming():
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                group.append(await asyncio.wait_for(self._queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return [(tensor, future) for tensor, future in group if not future.done()]


def _failure(exc: Exception) -> PPInferError:
    if isinstance(exc, PPInferError):
        return exc
    return EngineFailed(str(exc) or type(exc).__name__)


class _suppress_cancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, *_: object) -> bool:
        return kind is asyncio.CancelledError
