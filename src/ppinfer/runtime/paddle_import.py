"""Importing Paddle whole: quietly, with Paddle's load-time settings, and with one sentence when
it is missing or hidden by another module named ``paddle``.

:mod:`ppinfer.runtime.paddle_core` loads only Paddle's C++ extension where it can; both start
from :func:`before_paddle_loads`.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings

from ppinfer.errors import PaddleMissingError

PADDLE_INSTALL_HINT = (
    "PaddlePaddle is not installed: run `pip install 'ppinfer[cpu]'` "
    "(or `pip install 'ppinfer[gpu]'` on a CUDA machine)."
)


def before_paddle_loads() -> None:
    """Settings Paddle's libraries read once, when they load; the user's own win.

    ``GLOG_minloglevel=2``: Paddle's C++ side logs through glog at INFO by default; stderr is
    kept for ppinfer's own messages.

    ``KMP_BLOCKTIME=1``: after a parallel region Intel's OpenMP keeps its threads spinning for
    200 ms by default, on cores that decoding (or another engine) needs. One millisecond is as
    fast for the predictor alone (0.98-1.01x on every model and batch measured) and lets
    decoding overlap inference (BENCHMARKS.md, "Levers"); 0 is 15-50% slower.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("KMP_BLOCKTIME", "1")


def import_paddle():
    """Import and return ``paddle``, or raise a one-sentence install hint."""
    from ppinfer.runtime.interrupts import deferred_interrupts
    from ppinfer.runtime.quiet import verbose

    before_paddle_loads()
    # Ctrl-C while Paddle's C++ extension loads surfaces as an ImportError ("not installed"):
    # it is held until the import is over, then raised as the KeyboardInterrupt it is.
    with deferred_interrupts():
        try:
            with warnings.catch_warnings(), contextlib.ExitStack() as stack:
                warnings.simplefilter("ignore")  # e.g. "No ccache found" on import
                if not verbose():  # e.g. "WARNING: OMP_NUM_THREADS set to 2, not 1 ..."
                    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
                import paddle  # deliberately late: heavy, and optional
        except ImportError as exc:
            raise PaddleMissingError(PADDLE_INSTALL_HINT) from exc
    check_paddlepaddle(paddle)
    return paddle


def check_paddlepaddle(paddle) -> None:
    """Raise one sentence when the module imported as ``paddle`` is not PaddlePaddle (a
    ``paddle.py`` or ``paddle/`` in the current directory hides the installed one)."""
    home = getattr(paddle, "base", None) or getattr(paddle, "fluid", None)
    if getattr(home, "core", None) is not None and hasattr(paddle, "__version__"):
        return
    if getattr(getattr(paddle, "__spec__", None), "_initializing", False):
        raise PaddleMissingError(
            "Paddle is being imported in another thread at this moment (Python handed over "
            "the half-imported module): import paddle before starting the threads.")
    where = getattr(paddle, "__file__", None) or list(getattr(paddle, "__path__", []))
    raise PaddleMissingError(
        f"The 'paddle' Python imported is {where}, not PaddlePaddle: a file or folder named "
        "paddle in the current directory (or on PYTHONPATH) hides the installed one; run "
        "from another directory or rename it.")
