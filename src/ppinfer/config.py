"""The one run configuration: every option, validated once, translated to Paddle in one place.

``RunConfig`` holds what the user asked for (``None`` = decide for me). :meth:`RunConfig.resolve`
checks it against the installed Paddle and this machine and returns a concrete copy;
:meth:`RunConfig.inference_calls` is the only place that turns options into
``paddle.inference.Config`` calls. The calls are plain data first (so the GPU and TensorRT paths
can be tested on a machine without a GPU) and applied by :func:`apply_calls`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ppinfer.errors import ConfigError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# paddle.inference.PrecisionType member names
_TRT_PRECISION = {"fp32": "Float32", "fp16": "Half", "bf16": "Bfloat16", "int8": "Int8"}


def default_cache_dir() -> Path:
    """ppinfer's cache root: ``$PPINFER_HOME`` or ``~/.cache/ppinfer``."""
    home = os.environ.get("PPINFER_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "ppinfer"


def _check_trt_cache_dir(path: str, given: bool) -> None:
    """TensorRT's serialized engines go to ``path``: a sentence now, naming PPINFER_HOME or
    --trt-cache-dir, when it cannot be made or written (a file there, read-only, ...), rather
    than Paddle's own error at build time."""
    try:
        os.makedirs(path, exist_ok=True)
        writable = os.access(path, os.W_OK | os.X_OK)
        reason = None if writable else "not writable"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    if reason is None:
        return
    if given:
        raise ConfigError(f"--trt-cache-dir {path} cannot hold TensorRT's engines ({reason}): "
                          "pass a writable folder.")
    raise ConfigError(f"ppinfer's cache {default_cache_dir()} cannot hold TensorRT's engines "
                      f"({reason}): set PPINFER_HOME to a writable folder, or pass "
                      "--trt-cache-dir.")


MAX_BATCH_SIZE = 256
"""Largest --batch-size: memory grows linearly with it (docs/faults.md)."""
THREADS_PER_CORE_MAX = 4
"""--cpu-threads may oversubscribe the cores up to this factor, no further."""


@dataclass(frozen=True)
class ConfigCall:
    """One call on ``paddle.inference.Config``: ``method(*args, **kwargs)``."""

    method: str
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.method}({', '.join(parts)})"


@dataclass(frozen=True)
class PrecisionType:
    """Stands for ``paddle.inference.PrecisionType.<name>`` inside a :class:`ConfigCall`."""

    name: str


@dataclass(frozen=True)
class RunConfig:
    device: str = "auto"  # auto | cpu | gpu | gpu:N
    gpu_mem: int = 8000  # MB, initial GPU memory pool
    ir_optim: bool = True
    memory_optim: bool = True
    use_tensorrt: bool | None = None  # None: on when on GPU and this Paddle has TensorRT
    trt_min_subgraph_size: int = 3
    trt_max_batch: int | None = None  # None: the batch size
    trt_workspace: int = 1 << 30
    trt_dynamic_batch: bool = True
    trt_cache_dir: str | None = None  # None: <cache>/trt
    mkldnn: bool = True
    mkldnn_cache_capacity: int = 10  # input shapes oneDNN keeps kernels for
    cpu_threads: int | None = None  # None: all cores
    precision: str = "fp32"
    batch_size: int = 1
    top_k: int = 5
    # bf16 on a CPU without avx512_bf16: oneDNN simulates it (slow; Paddle 3.3 runs batch 1
    # only). For checking bf16 numerics on such a machine; also PPINFER_BF16_EMULATION=1.
    bf16_emulation: bool = False
    resolved: bool = False

    # -- resolution -------------------------------------------------------------------------
    @property
    def use_gpu(self) -> bool:
        return self.device.startswith("gpu")

    @property
    def gpu_id(self) -> int:
        return int(self.device.partition(":")[2] or 0) if self.use_gpu else 0

    def resolve(self, env=None) -> RunConfig:
        """Check every option against ``env`` (default: the installed Paddle); fill the Nones."""
        if self.resolved:
            return self
        if env is None:
            from ppinfer.runtime.paddle_env import paddle_env

            env = paddle_env()
        self._check_ranges()
        if self.cpu_threads is not None and self.cpu_threads > THREADS_PER_CORE_MAX * env.cpu_count:
            raise ConfigError(
                f"--cpu-threads {self.cpu_threads} is more than {THREADS_PER_CORE_MAX} per core "
                f"({THREADS_PER_CORE_MAX * env.cpu_count} for the {env.cpu_count} cores here): "
                "each thread takes its own stack and scratch memory and more only slow the run."
            )
        device = self._resolve_device(env)
        use_gpu = device.startswith("gpu")
        use_trt = self.use_tensorrt
        if use_trt is None:
            use_trt = use_gpu and env.with_tensorrt
        if use_trt and not use_gpu:
            raise ConfigError(
                "TensorRT needs a GPU, and this run is on the CPU: drop --use-tensorrt "
                "or run with --use-gpu on a CUDA machine."
            )
        if use_trt and not env.with_tensorrt:
            raise ConfigError(
                f"This Paddle ({env.version}) was built without TensorRT: "
                "install a paddlepaddle-gpu build with TensorRT or pass --no-use-tensorrt."
            )
        self._check_precision(env, use_gpu, use_trt)
        trt_cache_dir = self.trt_cache_dir or str(default_cache_dir() / "trt")
        if use_trt:
            _check_trt_cache_dir(trt_cache_dir, given=self.trt_cache_dir is not None)
        return replace(
            self,
            device=device,
            use_tensorrt=use_trt,
            trt_max_batch=self.trt_max_batch or self.batch_size,
            trt_cache_dir=trt_cache_dir,
            cpu_threads=self.cpu_threads or env.cpu_count,
            mkldnn=self.mkldnn and env.with_onednn,
            resolved=True,
        )

    def _check_ranges(self) -> None:
        for name in ("gpu_mem", "batch_size", "top_k", "trt_min_subgraph_size", "trt_workspace"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be at least 1.")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ConfigError("cpu-threads must be at least 1.")
        if self.batch_size > MAX_BATCH_SIZE:
            raise ConfigError(
                f"--batch-size {self.batch_size} is over ppinfer's limit of {MAX_BATCH_SIZE}: "
                "memory grows with the batch (about 11 MB per 224x224 image for the built-in "
                "model), and larger batches do not run faster on a CPU."
            )
        if self.trt_max_batch is not None and self.trt_max_batch < self.batch_size:
            raise ConfigError(
                f"The TensorRT max batch ({self.trt_max_batch}) is smaller than the batch size "
                f"({self.batch_size}): raise it or lower --batch-size."
            )
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"Unknown precision {self.precision!r}: use one of {', '.join(PRECISIONS)}."
            )

    def _resolve_device(self, env) -> str:
        device = self.device.lower()
        if device == "auto":
            return "gpu:0" if env.with_cuda and env.gpu_count > 0 else "cpu"
        if device == "cpu":
            return device
        kind, _, index = device.partition(":")
        if kind != "gpu" or (index and not index.isdigit()):
            raise ConfigError(f"Unknown device {self.device!r}: use cpu, gpu, gpu:N or auto.")
        if not env.with_cuda:
            raise ConfigError(
                f"A GPU was asked for, but this Paddle ({env.version}) is a CPU build: "
                "install paddlepaddle-gpu (pip install 'ppinfer[gpu]') or pass --no-use-gpu."
            )
        gpu_id = int(index or 0)
        if gpu_id >= env.gpu_count:
            seen = f"{env.gpu_count} GPU(s) are visible" if env.gpu_count else "no GPU is visible"
            raise ConfigError(
                f"GPU {gpu_id} was asked for but {seen}: check CUDA_VISIBLE_DEVICES and the "
                "driver, or pass --no-use-gpu."
            )
        return f"gpu:{gpu_id}"

    def _check_precision(self, env, use_gpu: bool, use_trt: bool) -> None:
        p = self.precision
        if use_gpu:
            if p in ("int8", "bf16") and not use_trt:
                raise ConfigError(
                    f"{p} on a GPU runs through TensorRT here: add --use-tensorrt, "
                    "or use fp16/fp32."
                )
            return
        if p == "fp16":
            raise ConfigError(
                "fp16 needs a GPU; on the CPU use --precision bf16 (CPUs with avx512_bf16) or fp32."
            )
        if p in ("bf16", "int8") and not (self.mkldnn and env.with_onednn):
            raise ConfigError(f"{p} on the CPU runs through oneDNN: drop --no-mkldnn.")
        emulate = self.bf16_emulation or os.environ.get("PPINFER_BF16_EMULATION") == "1"
        can_emulate = emulate and "avx512bw" in env.cpu_flags
        if p == "bf16" and not env.has_avx512_bf16 and not can_emulate:
            raise ConfigError(
                "This CPU has no avx512_bf16, so bf16 would be emulated and slow: use fp32."
            )

    # -- translation ------------------------------------------------------------------------
    def inference_calls(
        self,
        input_name: str | None = None,
        input_shape: tuple[int, int, int] | None = None,
        ir: str = "legacy",
    ) -> list[ConfigCall]:
        """The ``paddle.inference.Config`` calls this configuration makes, in order.

        ``ir`` is the program's IR ('pir' for a .json program, else 'legacy').
        """
        if not self.resolved:
            raise RuntimeError("resolve() the RunConfig before translating it")
        from ppinfer.runtime.quiet import verbose

        # Paddle's pass logs ("--- Running analysis ...", glog INFO): shown only with --verbose
        calls = [] if verbose() else [ConfigCall("disable_glog_info")]
        calls.append(ConfigCall("switch_ir_optim", (self.ir_optim,)))
        # Paddle 3.3's predictor fails on PIR programs with memory_optimize_pass enabled
        # ("Not find predictor_id ... memory_optimize_pass"); PIR plans memory itself.
        if self.memory_optim and ir != "pir":
            calls.append(ConfigCall("enable_memory_optim"))
        calls.append(ConfigCall("switch_use_feed_fetch_ops", (False,)))
        if self.use_gpu:
            calls += self._gpu_calls(input_name, input_shape)
        else:
            calls += self._cpu_calls()
        return calls

    def _cpu_calls(self) -> list[ConfigCall]:
        calls = [ConfigCall("disable_gpu"), ConfigCall("set_cpu_math_library_num_threads",
                                                       (self.cpu_threads,))]
        if not self.mkldnn:
            calls.append(ConfigCall("disable_mkldnn"))
            return calls
        calls += [
            ConfigCall("enable_mkldnn"),
            # Without a bound, oneDNN caches kernels for every input shape it ever sees.
            ConfigCall("set_mkldnn_cache_capacity", (self.mkldnn_cache_capacity,)),
        ]
        if self.precision == "bf16":
            calls.append(ConfigCall("enable_mkldnn_bfloat16"))
        elif self.precision == "int8":
            calls.append(ConfigCall("enable_mkldnn_int8"))
        return calls

    def _gpu_calls(self, input_name, input_shape) -> list[ConfigCall]:
        # enable_use_gpu must come before enable_tensorrt_engine.
        calls = [ConfigCall("enable_use_gpu", (self.gpu_mem, self.gpu_id))]
        if not self.use_tensorrt:
            if self.precision == "fp16":
                calls[0] = ConfigCall(
                    "enable_use_gpu", (self.gpu_mem, self.gpu_id, PrecisionType("Half"))
                )
            return calls
        calls.append(
            ConfigCall(
                "enable_tensorrt_engine",
                kwargs={
                    "workspace_size": self.trt_workspace,
                    "max_batch_size": self.trt_max_batch,
                    "min_subgraph_size": self.trt_min_subgraph_size,
                    "precision_mode": PrecisionType(_TRT_PRECISION[self.precision]),
                    # Serialise built engines so the second start skips the build.
                    "use_static": True,
                    "use_calib_mode": self.precision == "int8",
                },
            )
        )
        calls.append(ConfigCall("set_optim_cache_dir", (self.trt_cache_dir,)))
        if self.trt_dynamic_batch and input_name and input_shape:
            shape = list(input_shape)
            calls.append(
                ConfigCall(
                    "set_trt_dynamic_shape_info",
                    (
                        {input_name: [1, *shape]},
                        {input_name: [self.trt_max_batch, *shape]},
                        {input_name: [self.batch_size, *shape]},
                    ),
                )
            )
        return calls


def apply_calls(paddle_config: Any, calls: list[ConfigCall]) -> Any:
    """Make ``calls`` on a real ``paddle.inference.Config``; return it."""
    precision = type(paddle_config).Precision  # paddle.inference.PrecisionType

    def real(value):
        if isinstance(value, PrecisionType):
            return getattr(precision, value.name)
        return value

    for call in calls:
        method = getattr(paddle_config, call.method)
        method(*(real(a) for a in call.args), **{k: real(v) for k, v in call.kwargs.items()})
    return paddle_config
