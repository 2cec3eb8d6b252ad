"""What the installed Paddle and this machine can do, detected once.

Importing this module is cheap; Paddle is imported on the first call of :func:`paddle_env`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import threading
from dataclasses import dataclass, field

from ppinfer.runtime.paddle_import import import_paddle


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
    (:mod:`ppinfer.runtime.paddle_core`)."""
    from ppinfer.runtime.paddle_core import paddle_core

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
