"""The one run configuration: every option, validated once.

``RunConfig`` holds what the user asked for (``None`` = decide for me). :meth:`RunConfig.resolve`
checks it against the installed Paddle and this machine and returns a concrete copy; turning it
into ``paddle.inference.Config`` calls is :mod:`ppinfer.config.paddle_calls`'s job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ppinfer.errors import ConfigError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


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


def model_precision(quantized_for: str | None) -> str:
    """The precision a run takes when none is given: int8 for a model ``ppinfer quantize``
    made (for the engine ``quantized_for``, as its card says), else fp32."""
    return "int8" if quantized_for else "fp32"


MAX_BATCH_SIZE = 256
"""Largest --batch-size: memory grows linearly with it (docs/faults.md)."""
THREADS_PER_CORE_MAX = 4
"""--cpu-threads may oversubscribe the cores up to this factor, no further."""


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
    # None: not given, so the model's: int8 for one ``ppinfer quantize`` wrote (its card names
    # the engine), else fp32 (:meth:`for_model`)
    precision: str | None = None
    batch_size: int = 1
    top_k: int = 5
    # bf16 on a CPU without avx512_bf16: oneDNN simulates it (slow; Paddle 3.3 runs batch 1
    # only). For checking bf16 numerics on such a machine; also PPINFER_BF16_EMULATION=1.
    bf16_emulation: bool = False
    precision_given: bool | None = None  # set by resolve(): was the precision asked for?
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
        if self.precision is None or self.precision_given is None:
            given = self.precision is not None if self.precision_given is None \
                else self.precision_given
            return replace(self, precision=self.precision or "fp32",
                           precision_given=given).resolve(env)
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

    def for_model(self, quantized_for: str | None) -> RunConfig:
        """This configuration, resolved, for a model ``ppinfer quantize`` made for the engine
        ``quantized_for`` (its card says; None for a float model): a precision not given is
        then int8, since running such a model at fp32 runs its quantize ops as float
        arithmetic (slower than the float model) or not at all. A given one is kept."""
        config = self.resolve()
        chosen = model_precision(quantized_for)
        if not config.precision_given and config.precision != chosen:
            return replace(config, precision=chosen, resolved=False).resolve()
        return config

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

    # -- translation (config/paddle_calls.py) -------------------------------------------------
    def inference_calls(
        self,
        input_name: str | None = None,
        input_shape: tuple[int, int, int] | None = None,
        ir: str = "legacy",
    ) -> list:
        """The ``paddle.inference.Config`` calls this configuration makes, in order (see
        :func:`ppinfer.config.paddle_calls.inference_calls`)."""
        from ppinfer.config.paddle_calls import inference_calls

        return inference_calls(self, input_name, input_shape, ir)
