"""A decode worker process: reads image paths, writes preprocessed tensors into shared memory.

Started by :mod:`ppinfer.pipeline.decode_processes` as ``python -c ... TASK_FD RESULT_FD
SHARED_FD`` (:data:`~ppinfer.pipeline.decode_processes.WORKER_CODE`, which calls :func:`start`)
with two pipe ends and the shared memory file's descriptor inherited.
The parent sends the settings first (the preprocessing and the image limits), then one task per
image: ``(seq, slot, path)``. The worker decodes and preprocesses the image exactly as the
threads do (:func:`load_image`, the engine's preprocessing), copies the ``1 x C x H x W``
float32 result into ``slot`` of the shared file, and answers ``(seq, slot, shape, error,
seconds, array)``: ``array`` only when the tensor is larger than a slot, ``error`` the
ImageError's sentence. It exits when the parent closes the task pipe (or dies), and ignores
Ctrl-C, which the parent handles.
"""

from __future__ import annotations

import mmap
import os
import signal
import sys
import time
from multiprocessing.connection import Connection


def serve(tasks: Connection, results: Connection, shared_fd: int) -> None:
    settings = tasks.recv()
    from ppinfer.pipeline.limits import set_decoder_pixel_limit

    set_decoder_pixel_limit(settings["max_pixels"])  # before cv2 is imported, as the CLI does
    import numpy as np

    from ppinfer.pipeline.preprocess import load_one

    slot_bytes = settings["slot_bytes"]
    shared = mmap.mmap(shared_fd, 0)
    os.close(shared_fd)  # the mapping keeps the memory
    results.send("ready")
    while True:
        try:
            seq, slot, path = tasks.recv()
        except EOFError:  # the parent is done, or gone
            return
        start = time.perf_counter()
        try:
            loaded = load_one(path, settings["preprocess"], settings["max_pixels"],
                              settings["max_bytes"])
        except Exception as exc:  # a bug: the parent re-raises it  # noqa: BLE001
            results.send((seq, slot, None, exc, time.perf_counter() - start, None))
            continue
        if loaded.error is not None:
            results.send((seq, slot, None, loaded.error, loaded.seconds, None))
            continue
        tensor, seconds = np.ascontiguousarray(loaded.tensor, dtype=np.float32), loaded.seconds
        if tensor.nbytes <= slot_bytes:
            view = np.frombuffer(shared, np.float32, tensor.size, slot * slot_bytes)
            view[:] = tensor.ravel()
            del view
            results.send((seq, slot, tensor.shape, None, seconds, None))
        else:
            results.send((seq, slot, tensor.shape, None, seconds, tensor))


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    task_fd, result_fd, shared_fd = (int(arg) for arg in argv[:3])
    tasks, results = Connection(task_fd, writable=False), Connection(result_fd, readable=False)
    try:
        serve(tasks, results, shared_fd)
    except (BrokenPipeError, EOFError, ConnectionResetError):
        pass  # the parent went away
    finally:
        tasks.close()
        results.close()
    return 0


def start(argv: list[str]) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main(argv))


if __name__ == "__main__":
    start(sys.argv[1:])
