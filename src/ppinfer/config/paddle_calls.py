"""RunConfig -> ``paddle.inference.Config`` calls: the only place options become Paddle calls.

The calls are plain data first (:class:`ConfigCall`), so the GPU and TensorRT paths can be
tested on a machine without a GPU, and are made on a real config by :func:`apply_calls`.
(``self`` below is the resolved :class:`~ppinfer.config.run.RunConfig`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# paddle.inference.PrecisionType member names
_TRT_PRECISION = {"fp32": "Float32", "fp16": "Half", "bf16": "Bfloat16", "int8": "Int8"}


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
        calls += _gpu_calls(self, input_name, input_shape)
    else:
        calls += _cpu_calls(self)
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
