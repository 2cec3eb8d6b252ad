"""The dynamic batcher: many requests' tensors, one engine call per group.

Host-neutral on purpose: it needs only a running asyncio loop, so the FastAPI app under
uvicorn and a Ray Serve replica (the same app under ``serve.ingress``) share it. It starts on
first use in whichever loop calls it, because a mounted app never sees its lifespan.

How a group forms. One worker task takes the oldest waiting tensor, then every other one
already waiting, up to ``max_batch``. It waits (at most ``max_delay_s`` after the first) for
more only while requests it has admitted are still decoding: those are coming, and a lone
request (nobody decoding) runs at once instead of waiting out the delay for company that will
not come. While the engine runs one group, the next one gathers, so under load groups grow
without any waiting.

Bounds. ``admit()`` is taken before a request's body is read and held until its answer, so at
most ``max_queue`` requests (bodies, decoded images, tensors) are in the process at once; one
more gets :class:`Overloaded` (HTTP 503). The engine runs in one thread of its own, so the
event loop keeps accepting and answering while it works.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


class Overloaded(Exception):
    """``max_queue`` requests are already in the server."""


class Stopped(Exception):
    """The batcher is draining or stopped and takes no new work."""


@dataclass
class Job:
    """One request's tensor (1 x C x H x W); its future gets the output row."""

    tensor: np.ndarray
    future: asyncio.Future


class Ticket:
    """One admitted request's place (see :meth:`Batcher.admit`)."""

    __slots__ = ("closed", "submitted")

    def __init__(self) -> None:
        self.submitted = False
        self.closed = False  # its request has been answered: nothing more may be submitted


# What the engine thread runs for one group: the stacked batch -> one output row per image.
RunBatch = Callable[[np.ndarray], np.ndarray]


class Batcher:
    """Groups submitted tensors into engine calls (see the module's docstring)."""

    def __init__(self, run_batch: RunBatch, *, max_batch: int = 8, max_delay_s: float = 0.005,
                 max_queue: int = 256,
                 on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch < 1 or max_queue < 1 or max_delay_s < 0:
            raise ValueError("max_batch and max_queue must be at least 1, max_delay_s >= 0")
        self.run_batch = run_batch
        self.max_batch, self.max_delay_s, self.max_queue = max_batch, max_delay_s, max_queue
        self.on_batch = on_batch
        self.admitted = 0  # requests inside admit(): reading, decoding, waiting or running
        self.decoding = 0  # admitted, not yet submitted
        self._waiting: deque[Job] = deque()
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._engine_thread: ThreadPoolExecutor | None = None
        self._draining = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker in the running loop (again after :meth:`stop`); idempotent."""
        if self._worker is not None and not self._worker.done():
            return
        self._wake, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._engine_thread = ThreadPoolExecutor(1, thread_name_prefix="ppinfer-engine")
        self._draining = False
        self._worker = asyncio.get_running_loop().create_task(self._work())

    @property
    def draining(self) -> bool:
        """True once :meth:`stop` was called: no new request is admitted."""
        return self._draining

    async def stop(self, *, drain: bool = True) -> None:
        """Take no new requests; with ``drain``, finish every admitted one first."""
        self._draining = True
        if drain and self._idle is not None:
            await self._idle.wait()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        for job in self._waiting:
            if not job.future.done():
                job.future.set_exception(Stopped())
        self._waiting.clear()
        if self._engine_thread is not None:
            self._engine_thread.shutdown(wait=False)

    # -- requests ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def admit(self) -> AsyncIterator[Ticket]:
        """Hold one of ``max_queue`` places for a request, from before its body is read until
        its answer is ready. Raises :class:`Overloaded` or :class:`Stopped` at once."""
        if self._draining:
            raise Stopped()
        if self.admitted >= self.max_queue:
            raise Overloaded()
        self.start()
        ticket = Ticket()
        self.admitted += 1
        self.decoding += 1
        self._idle.clear()
        try:
            yield ticket
        finally:
            ticket.closed = True
            self.admitted -= 1
            if not ticket.submitted:
                self.decoding -= 1
                self._wake.set()  # the worker need not wait for this one any more
            if self.admitted == 0:
                self._idle.set()

    async def submit(self, ticket: Ticket, tensor: np.ndarray) -> np.ndarray:
        """The output row for ``tensor`` (1 x C x H x W), computed in a group; ``ticket`` is
        what :meth:`admit` gave (a request may submit several tensors). Cancelling the await
        (a timeout) drops the tensor if it has not run yet."""
        if ticket.closed:  # a sibling image failed its request, which has been answered
            raise Stopped()
        if not ticket.submitted:  # a request of several images is decoding no more
            ticket.submitted = True
            self.decoding -= 1
        job = Job(tensor, asyncio.get_running_loop().create_future())
        self._waiting.append(job)
        self._wake.set()
        return await job.future

    def queue_depth(self) -> int:
        """Tensors waiting for the engine."""
        return len(self._waiting)

    # -- the worker --------------------------------------------------------------------------
    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = await self._gather()
            batch = group[0].tensor if len(group) == 1 else np.concatenate(
                [job.tensor for job in group])
            try:
                rows = await loop.run_in_executor(self._engine_thread, self._run, batch, group)
            except Exception as exc:  # noqa: BLE001 - every job gets the error, none is lost
                rows = [exc] * len(group)
            for job, row in zip(group, rows):
                if job.future.done():  # timed out or cancelled meanwhile
                    continue
                if isinstance(row, BaseException):
                    job.future.set_exception(row)
                else:
                    job.future.set_result(row)
            if self.on_batch is not None:
                self.on_batch(len(group))

    def _run(self, batch: np.ndarray, group: list[Job]) -> list:
        """In the engine thread. A group that fails is run again one by one, so a tensor the
        engine cannot take fails its own request only."""
        try:
            outputs = np.asarray(self.run_batch(batch))
            return list(outputs.reshape(len(group), -1))
        except Exception:  # noqa: BLE001
            if len(group) == 1:
                raise
        rows: list = []
        for job in group:
            try:
                rows.append(np.asarray(self.run_batch(job.tensor)).reshape(-1))
            except Exception as exc:  # noqa: BLE001
                rows.append(exc)
        return rows

    async def _gather(self) -> list[Job]:
        """The next group: the oldest live job, then those of its shape, as described above."""
        group: list[Job] = []
        deadline = None
        loop = asyncio.get_running_loop()
        while True:
            self._take(group)
            if group and (len(group) >= self.max_batch or self.decoding <= 0):
                return group
            if group and deadline is None:
                deadline = loop.time() + self.max_delay_s
            timeout = None if deadline is None else deadline - loop.time()
            if timeout is not None and timeout <= 0:
                return group
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _take(self, group: list[Job]) -> None:
        while self._waiting and len(group) < self.max_batch:
            job = self._waiting[0]
            if job.future.done():  # its request timed out while it waited
                self._waiting.popleft()
                continue
            if group and job.tensor.shape[1:] != group[0].tensor.shape[1:]:
                return  # another shape waits for the next group
            group.append(self._waiting.popleft())
