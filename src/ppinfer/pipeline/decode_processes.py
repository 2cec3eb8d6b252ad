"""Decode and preprocess in worker processes, the tensors passed back in shared memory.

For engines that keep Python's GIL while they infer (Paddle 3's analysis predictor): decode
threads then wait for the GIL through every ``run()``, and inference and decoding take turns
instead of overlapping. Worker processes have GILs of their own. Each is a plain ``python -c``
child running :mod:`ppinfer.pipeline.decode_worker` (not ``multiprocessing``, which would
re-import the user's ``__main__``), with one pipe for tasks and one for answers, and a shared
memory file of ``slots`` tensor-sized slots; the parent sends ``(seq, slot, path)``, the worker
writes the tensor into the slot and answers with a few bytes, so answers never wait for the
parent to read them while it infers. The shared file has no name (``memfd_create``; elsewhere
a temporary file unlinked at once) and reaches the workers as an inherited descriptor: nothing
is left behind, however the run ends, even a ``kill -9`` while the workers start.

A worker that dies leaves its images to be decoded in this process: results are never lost.
"""

from __future__ import annotations

import atexit
import contextlib
import mmap
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from ppinfer.pipeline.preprocess import Loaded, load_one
from ppinfer.pipeline.preprocess_config import PreprocessConfig

STARTUP_TIMEOUT_S = 60.0
# `python -c`, minus the current folder that -c and -m put first on sys.path: a cv2.py or
# numpy.py beside the user's photos must not replace OpenCV or NumPy in the workers (the
# `ppinfer` console script that runs the parent does not search there either).
# (With PYTHONSAFEPATH set, Python 3.11+ puts nothing there, and nothing is removed.)
WORKER_CODE = ("import sys\n"
               "if not getattr(sys.flags, 'safe_path', False): del sys.path[0]\n"
               "from ppinfer.pipeline.decode_worker import start; start(sys.argv[1:])\n")
DRAIN_TIMEOUT_S = 30.0


@dataclass
class _Worker:
    process: subprocess.Popen
    tasks: Connection
    results: Connection
    outstanding: dict[int, tuple[int, str]] = field(default_factory=dict)  # seq -> (slot, path)
    alive: bool = True


class ProcessDecoder:
    """``workers`` decode processes sharing ``slots`` slots of ``slot_shape`` float32 tensors.

    :meth:`submit` returns a ticket; :meth:`result` waits for it and returns a :class:`Loaded`
    whose tensor is a copy (the slot is free again at once). :meth:`close` stops the workers.
    """

    def __init__(self, preprocess: PreprocessConfig, slot_shape: tuple[int, ...], slots: int,
                 workers: int, max_pixels: int, max_bytes: int) -> None:
        self.slot_bytes = int(np.prod(slot_shape)) * 4
        self.free = list(range(slots))
        self.done: dict[int, Loaded] = {}
        self.seq = 0
        self.workers: list[_Worker] = []
        self.lock = threading.Lock()  # one predict loop at a time uses a decoder
        fd = _anonymous_shared_file()
        try:
            os.ftruncate(fd, self.slot_bytes * slots)
            self.shared = mmap.mmap(fd, self.slot_bytes * slots)
            self.settings = settings = {"preprocess": preprocess, "max_pixels": max_pixels,
                                        "max_bytes": max_bytes, "slot_bytes": self.slot_bytes}
            for _ in range(workers):
                self.workers.append(_start_worker(fd, settings))
            for worker in self.workers:
                _await_ready(worker)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(fd)  # mapped here and in every worker (or they failed)

    def submit(self, path: str) -> int:
        """Queue ``path``; the ticket to pass to :meth:`result`."""
        seq, self.seq = self.seq, self.seq + 1
        live = [w for w in self.workers if w.alive]
        if not live or not self.free:
            self.done[seq] = decode_here(path, self.settings)
            return seq
        worker = min(live, key=lambda w: len(w.outstanding))
        slot = self.free.pop()
        worker.outstanding[seq] = (slot, path)
        try:
            worker.tasks.send((seq, slot, path))
        except OSError:
            self._lost(worker)
        return seq

    def result(self, seq: int) -> Loaded:
        while seq not in self.done:
            live = [w for w in self.workers if w.alive and w.outstanding]
            if not live:
                raise RuntimeError(f"decode task {seq} was never submitted")
            ready = wait([w.results for w in live])
            for worker in live:
                if worker.results in ready:
                    self._receive(worker)
        return self.done.pop(seq)

    def discard_outstanding(self) -> None:
        """Wait for (and drop) every answer still due, so the next run starts clean; a worker
        that does not answer in time is stopped."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while True:
            live = [w for w in self.workers if w.alive and w.outstanding]
            if not live:
                break
            ready = wait([w.results for w in live], max(0.0, deadline - time.monotonic()))
            if not ready:
                self.close()
                break
            for worker in live:
                if worker.results in ready:
                    with contextlib.suppress(Exception):  # a dropped task's own failure
                        self._receive(worker)
        self.done.clear()

    @property
    def usable(self) -> bool:
        return bool(self.workers) and all(w.alive for w in self.workers)

    def _receive(self, worker: _Worker) -> None:
        try:
            seq, slot, shape, error, seconds, array = worker.results.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        worker.outstanding.pop(seq, None)
        if isinstance(error, BaseException):
            self.free.append(slot)
            raise error
        if error is not None:
            loaded = Loaded(error=error, seconds=seconds)
        elif array is not None:
            loaded = Loaded(tensor=array, seconds=seconds)
        else:
            count = int(np.prod(shape))
            view = np.frombuffer(self.shared, np.float32, count, slot * self.slot_bytes)
            loaded = Loaded(tensor=view.reshape(shape).copy(), seconds=seconds)
            del view
        self.free.append(slot)
        self.done[seq] = loaded

    def _lost(self, worker: _Worker) -> None:
        """A worker died: decode what it held here, in order, and stop using it."""
        worker.alive = False
        for seq, (slot, path) in sorted(worker.outstanding.items()):
            self.done[seq] = decode_here(path, self.settings)
            self.free.append(slot)
        worker.outstanding.clear()

    def forget(self) -> None:
        """In a forked child: let go of the parent's workers without stopping them. The child
        closes its copies of the pipes and of the shared memory; the parent's stay open."""
        for worker in self.workers:
            for end in (worker.tasks, worker.results):
                with contextlib.suppress(OSError):
                    end.close()
        self.workers = []
        shared, self.shared = getattr(self, "shared", None), None
        if shared is not None:
            with contextlib.suppress(BufferError):
                shared.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.tasks.close()
        deadline = time.monotonic() + 5.0
        for worker in self.workers:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
            worker.results.close()
        self.workers = []
        shared = getattr(self, "shared", None)
        if shared is not None:
            self.shared = None
            with contextlib.suppress(BufferError):  # a view still exported: goes with the process
                shared.close()


def _anonymous_shared_file() -> int:
    """A descriptor of a shared memory file that no path names, so none can be left behind."""
    if hasattr(os, "memfd_create"):
        with contextlib.suppress(OSError):
            return os.memfd_create("ppinfer-decode", os.MFD_CLOEXEC)
    shared_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    fd, name = tempfile.mkstemp(prefix="ppinfer-decode-", dir=shared_dir)
    os.unlink(name)
    return fd


def _start_worker(shared_fd: int, settings: dict) -> _Worker:
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    package_root = str(Path(__file__).resolve().parents[2])  # where `ppinfer` is importable
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, str(task_r), str(result_w), str(shared_fd)],
            pass_fds=(task_r, result_w, shared_fd), stdin=subprocess.DEVNULL, env=env,
            close_fds=True,
            start_new_session=True,  # a terminal's Ctrl-C goes to ppinfer alone, which stops us
        )
    finally:
        os.close(task_r)
        os.close(result_w)
    worker = _Worker(process, Connection(task_w, readable=False),
                     Connection(result_r, writable=False))
    worker.tasks.send(settings)
    return worker


def _await_ready(worker: _Worker) -> None:
    try:
        ready = worker.results.poll(STARTUP_TIMEOUT_S) and worker.results.recv() == "ready"
    except (EOFError, OSError):
        ready = False
    if not ready:
        raise OSError("a decode worker process did not start")


def decode_here(path: str, settings: dict) -> Loaded:
    """What a worker does, in this process."""
    return load_one(path, settings["preprocess"], settings["max_pixels"], settings["max_bytes"])


_shared: dict[str, ProcessDecoder] = {}
_shared_lock = threading.Lock()  # threads that predict at once take and stop decoders here


def shared_decoder(preprocess: PreprocessConfig, slot_shape: tuple[int, ...], slots: int,
                   workers: int, max_pixels: int, max_bytes: int) -> ProcessDecoder | None:
    """A running decoder for these settings, locked for the caller (who releases
    ``decoder.lock`` when the run ends), or None when another run is using it. Started once
    and kept for the next run (a worker takes a few tenths of a second to start); decoders of
    other settings are stopped unless a run in another thread is using them. Raises OSError
    when the workers cannot start."""
    key = repr((preprocess, slot_shape, slots, workers, max_pixels, max_bytes))
    with _shared_lock:
        decoder = _shared.get(key)
        if decoder is not None and decoder.usable:
            return decoder if decoder.lock.acquire(blocking=False) else None
        if decoder is not None and decoder.lock.locked():
            return None  # its run goes on with a worker fewer; this one decodes in threads
        _close_idle()
        decoder = ProcessDecoder(preprocess, slot_shape, slots, workers, max_pixels, max_bytes)
        decoder.lock.acquire()
        _shared[key] = decoder
        return decoder


def _close_idle() -> None:
    """Stop the decoders no run is using (one in use is left to its run, and to the exit)."""
    for key, decoder in list(_shared.items()):
        if decoder.lock.acquire(blocking=False):
            try:
                decoder.close()
            finally:
                decoder.lock.release()
            del _shared[key]


def _forget_after_fork() -> None:
    """``os.fork()`` copies the decoders, and with them the pipes to the parent's workers: a
    child that predicted read answers meant for the parent (another image's tensor), and
    both then waited forever for answers the other had taken. A fork never shares the
    workers: the child forgets the parent's decoders and starts its own when it predicts."""
    global _shared_lock
    _shared_lock = threading.Lock()  # another thread may have held it at the fork
    for decoder in _shared.values():
        decoder.forget()
    _shared.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


@atexit.register
def close_shared() -> None:
    for decoder in _shared.values():
        decoder.close()
    _shared.clear()
