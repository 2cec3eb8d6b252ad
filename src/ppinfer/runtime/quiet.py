"""Keep Paddle's (and converters') own logging off ppinfer's stdout and stderr.

Paddle writes from C++ straight to file descriptors 1 and 2 ("--- marked 161 operators to
bfloat16", pass summaries), through glog (``I1125 ...`` lines) and through Python loggers
("The old way to load inference model is deprecated"). :func:`captured_output` points both
descriptors, and ``sys.stdout`` / ``sys.stderr``, at a file while a library call runs; with
:func:`set_verbose` (the CLI's ``--verbose`` / ``--debug``) nothing is captured and Paddle's
glog INFO lines are let through too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

_verbose = False
# File descriptors are process-wide: two threads redirecting at once could restore each
# other's redirection and leave stdout pointing at /dev/null. One capture at a time.
_lock = threading.RLock()


def set_verbose(on: bool) -> None:
    """Show the libraries' own logs (and Paddle's glog INFO lines, if Paddle is not loaded)."""
    global _verbose
    _verbose = bool(on)
    if on:
        os.environ["GLOG_minloglevel"] = "0"  # noqa: SIM112  (glog's own spelling)


def verbose() -> bool:
    return _verbose


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 (C++ and Python prints alike) to ``path`` for a while.

    Process-wide: what other threads print meanwhile goes there too."""
    _flush()
    saved = [os.dup(1), os.dup(2)]
    # The CLI points sys.stdout at a copy of fd 1 (see cli.main), so redirect both layers.
    with open(path, "a", buffering=1, errors="replace") as sink, \
            contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            _flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@contextlib.contextmanager
def captured_output() -> Iterator[None]:
    """Run the body with the libraries' output captured (dropped), unless verbose.

    Python loggers that hold a handle on the real ``sys.stderr`` write to fd 2 underneath, so
    they are captured too. When the body raises, the error ppinfer reports says what went wrong
    in one sentence; ``--verbose`` shows the libraries' own lines.
    """
    if _verbose:
        yield
        return
    import logging

    with _lock, output_to(Path(os.devnull)):
        # Loggers whose handler holds a stream object other than fd 2 (a test runner's, say)
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
