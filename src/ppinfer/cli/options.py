"""Option bundles shared by commands (sqlite-utils' ``output_options`` pattern)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from ppinfer.config import PRECISIONS


class FiniteFloat(click.ParamType):
    """A float that is finite (``nan`` and ``inf`` parse as floats but no check holds for them:
    ``nan > 0`` is False, a loop until ``inf`` seconds never ends), optionally above ``min``."""

    name = "float"

    def __init__(self, min: float | None = None, min_open: bool = False) -> None:  # noqa: A002
        self.min, self.min_open = min, min_open

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.min is not None and (number < self.min or (self.min_open and number == self.min)):
            bound = ">" if self.min_open else ">="
            self.fail(f"{value!r} is not {bound} {self.min:g}", param, ctx)
        return number


def parse_shape(_ctx, _param, value: str | None) -> tuple[int, int, int] | None:
    from ppinfer.api.options import parse_image_shape
    from ppinfer.errors import ConfigError

    try:
        return parse_image_shape(value)
    except ConfigError:
        raise click.BadParameter("expected C,H,W such as 3,224,224") from None


# name -> option; the run options shared by ``predict`` and ``bench``
_DEVICE_OPTIONS: dict[str, Callable] = {
    "batch_size": click.option(
        "-b", "--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
        help="Images per batch."),
    "use_gpu": click.option(
        "--use-gpu/--no-use-gpu", default=None,
        help="Run on a GPU (default: when Paddle has CUDA and a GPU is visible)."),
    "gpu_id": click.option(
        "--gpu-id", type=click.IntRange(min=0), default=0, show_default=True,
        help="Which GPU, when running on one."),
    "gpu_mem": click.option(
        "--gpu-mem", type=click.IntRange(min=1), default=8000, show_default=True,
        help="Initial GPU memory pool, MB."),
    "ir_optim": click.option(
        "--ir-optim/--no-ir-optim", default=True, show_default=True,
        help="Graph (IR) optimisation."),
    "use_tensorrt": click.option(
        "--use-tensorrt/--no-use-tensorrt", default=None,
        help="TensorRT subgraphs. Default: on for GPU runs when Paddle has TensorRT."),
    "trt_min_subgraph_size": click.option(
        "--trt-min-subgraph-size", type=click.IntRange(min=1), default=3, show_default=True,
        help="Smallest run of operators TensorRT takes over."),
    "trt_max_batch": click.option(
        "--trt-max-batch", type=click.IntRange(min=1), default=None,
        help="Largest batch a TensorRT engine accepts (default: --batch-size)."),
    "trt_cache_dir": click.option(
        "--trt-cache-dir", type=click.Path(file_okay=False), default=None,
        help="Where serialized TensorRT engines go (default: ~/.cache/ppinfer/trt)."),
    "precision": click.option(
        "--precision", type=click.Choice(PRECISIONS), default=None,
        help="Arithmetic: bf16 needs avx512_bf16 or AMX; int8 a quantized model. Default: "
             "int8 for a model ppinfer quantize wrote (its inference.yml says so), else fp32."),
    "cpu_threads": click.option(
        "--cpu-threads", type=click.IntRange(min=1), default=None,
        help="Math-library threads (default: all cores)."),
    "mkldnn": click.option(
        "--mkldnn/--no-mkldnn", default=True, show_default=True, help="oneDNN on the CPU."),
    "mkldnn_cache_capacity": click.option(
        "--mkldnn-cache-capacity", type=click.IntRange(min=1), default=10, show_default=True,
        help="Input shapes oneDNN keeps kernels for."),
}


def device_options(fn: Callable | None = None, *, exclude: tuple[str, ...] = ()) -> Callable:
    """Add the run options (device, precision, threads, TensorRT, oneDNN) to a command.

    ``exclude`` names options a command declares its own way (``bench`` takes lists).
    """

    def apply(fn: Callable) -> Callable:
        for name, option in reversed(_DEVICE_OPTIONS.items()):
            if name not in exclude:
                fn = option(fn)
        return fn

    return apply(fn) if fn is not None else apply


def run_config_from(kw: dict[str, Any], top_k: int = 5):
    """The resolved RunConfig for the run options in ``kw`` (removed from it): the same
    function ``ppinfer.load()`` uses."""
    from ppinfer.api.options import run_config

    return run_config(**{name: kw.pop(name) for name in _DEVICE_OPTIONS if name in kw},
                      top_k=top_k)
