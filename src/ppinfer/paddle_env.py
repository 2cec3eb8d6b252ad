"""What the installed Paddle and this machine can do, detected once.

Importing this module is cheap; Paddle is imported on the first call of :func:`paddle_env`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import platform
import threading
import warnings
from dataclasses import dataclass, field

from ppinfer.errors import PaddleMissingError

PADDLE_INSTALL_HINT = (
    "PaddlePaddle is not installed: run `pip install 'ppinfer[cpu]'` "
    "(or `pip install 'ppinfer[gpu]'` on a CUDA machine)."
)


@dataclass(frozen=True)
class PaddleEnv:
    version: str
    pir_default: bool  # the static IR is PIR (Paddle 3.x) rather than the legacy ProgramDesc
    with_cuda: bool
    with_tensorrt: bool
    tensorrt_version: str | None
    with_onednn: bool
    gpu_count: int
    cpu_model: str
    cpu_count: int
    cpu_flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def native_format(self) -> str:
        """The inference-model format ``save_inference_model`` writes on this Paddle."""
        return "pir" if self.pir_default else "legacy"

    @property
    def can_run_pir(self) -> bool:
        return self.major >= 3

    @property
    def has_avx512_bf16(self) -> bool:
        return "avx512_bf16" in self.cpu_flags or "amx_bf16" in self.cpu_flags


def import_paddle():
    """Import and return ``paddle``, or raise a one-sentence install hint."""
    from ppinfer.interrupts import deferred_interrupts
    from ppinfer.paddle_core import before_paddle_loads
    from ppinfer.quiet import verbose

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


def _cpu_info() -> tuple[str, frozenset[str]]:
    model, flags = platform.processor() or platform.machine(), frozenset()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                model = value.strip()
            elif key == "flags":
                flags = frozenset(value.split())
            if flags and model:
                continue
    return model, flags


@functools.lru_cache(maxsize=1)
def paddle_env() -> PaddleEnv:
    """What the installed Paddle can do, read from its core module: no ``import paddle`` needed
    (:mod:`ppinfer.paddle_core`)."""
    from ppinfer.paddle_core import paddle_core

    found = paddle_core()
    core = found.module
    pir = False
    with contextlib.suppress(Exception):  # the flag paddle.framework.use_pir_api() reads
        flag = bool(core.globals()["FLAGS_enable_pir_api"])
        pir = flag and int(found.version.split(".")[0]) >= 3
    with_cuda = bool(core.is_compiled_with_cuda())
    trt_version = None
    with contextlib.suppress(Exception):
        trt = tuple(core.get_trt_compile_version())
        if any(trt):
            trt_version = ".".join(str(v) for v in trt)
    onednn = False
    with contextlib.suppress(Exception):
        check = getattr(core, "is_compiled_with_onednn", None) or core.is_compiled_with_mkldnn
        onednn = bool(check())
    gpus = 0
    if with_cuda:
        with contextlib.suppress(Exception):
            gpus = int(core.get_cuda_device_count())
    model, cpu_flags = _cpu_info()
    return PaddleEnv(
        version=found.version,
        pir_default=pir,
        with_cuda=with_cuda,
        with_tensorrt=trt_version is not None,
        tensorrt_version=trt_version,
        with_onednn=onednn,
        gpu_count=gpus,
        cpu_model=model,
        cpu_count=os.cpu_count() or 1,
        cpu_flags=cpu_flags,
    )


def legacy_ir_guard():
    """Context in which static programs use the legacy IR (ProgramDesc): OldIrGuard on 3.x."""
    paddle = import_paddle()
    guard = getattr(getattr(paddle, "pir_utils", None), "OldIrGuard", None)
    if guard is not None and paddle_env().pir_default:
        return guard()
    return contextlib.nullcontext()


def ir_guard(fmt: str):
    """Context for building / loading a program of ``fmt`` ('pir' or 'legacy')."""
    if fmt == "legacy":
        return legacy_ir_guard()
    return contextlib.nullcontext()


# Static mode, the IR guard and ``scope_guard`` switch process-wide state (the global scope is a
# module variable): two threads running static programs at once would run in each other's scope.
# Whoever enters a static context holds this lock until it leaves (re-entrant: contexts nest).
STATIC_GRAPH_LOCK = threading.RLock()


@contextlib.contextmanager
def static_mode():
    """Static-graph mode for the duration, restoring dygraph after if it was on; one thread at
    a time (:data:`STATIC_GRAPH_LOCK`)."""
    paddle = import_paddle()
    with STATIC_GRAPH_LOCK, contextlib.ExitStack() as stack:
        if paddle.in_dynamic_mode():
            paddle.enable_static()
            stack.callback(paddle.disable_static)
        if paddle.in_dynamic_mode():
            # Not the thread that imported Paddle: enable_static only leaves the dygraph guard
            # that import entered in *its* thread, and this one still holds a tracer (its
            # executor would then refuse a PIR program's fetch targets). Drop the tracer here.
            stack.enter_context(paddle.base.framework._dygraph_guard(None))
        yield


def program_context(ir: str, scope) -> contextlib.ExitStack:
    """Static mode + the program's IR + its scope: where a static program is run or saved."""
    paddle = import_paddle()
    stack = contextlib.ExitStack()
    stack.enter_context(static_mode())  # holds STATIC_GRAPH_LOCK until the stack closes
    stack.enter_context(ir_guard(ir))
    stack.enter_context(paddle.static.scope_guard(scope))
    return stack


def package_version(distribution: str) -> str | None:
    """The installed version of a PyPI distribution, or None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
