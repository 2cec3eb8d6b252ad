"""Ctrl-C deferred to safe points, for work that runs inside Paddle's C++ code.

Python raises ``KeyboardInterrupt`` at the next bytecode, which can be inside a callback
Paddle's C++ code made; unwinding through it has aborted the process (``std::bad_alloc``,
exit 134) or ended it without a word. Inside :func:`deferred_interrupts` a Ctrl-C is only
recorded; ``checkpoint()`` raises it where ppinfer's own code can clean up, and leaving the
block raises it at the latest.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def deferred_interrupts() -> Iterator[Callable[[], None]]:
    """Yield ``checkpoint``: a call that raises KeyboardInterrupt if Ctrl-C came since entry.

    Outside the main thread (signals go to it alone) this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    pending: list[int] = []

    def record(signum, _frame) -> None:
        pending.append(signum)

    def checkpoint() -> None:
        if pending:
            pending.clear()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, record)
    try:
        yield checkpoint
    finally:
        signal.signal(signal.SIGINT, previous)
    checkpoint()
