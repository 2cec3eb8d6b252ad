"""Option bundles shared by commands (sqlite-utils' ``output_options`` pattern)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ppinfer.config import PRECISIONS


def parse_shape(_ctx, _param, value: str | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter("expected C,H,W such as 3,224,224")
    return shape


def device_options(fn: Callable) -> Callable:
    """The run options shared by ``predict`` (and later ``bench``): device, precision, threads."""
    options = [
        click.option("-b", "--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Images per batch."),
        click.option("--use-gpu/--no-use-gpu", default=None,
                     help="Run on a GPU (default: when Paddle has CUDA and a GPU is visible)."),
        click.option("--gpu-id", type=click.IntRange(min=0), default=0, show_default=True),
        click.option("--gpu-mem", type=click.IntRange(min=1), default=8000, show_default=True,
                     help="Initial GPU memory pool, MB."),
        click.option("--ir-optim/--no-ir-optim", default=True, show_default=True,
                     help="Graph (IR) optimisation."),
        click.option("--use-tensorrt/--no-use-tensorrt", default=None,
                     help="TensorRT subgraphs. Default: on for GPU runs when Paddle has TensorRT."),
        click.option("--trt-min-subgraph-size", type=click.IntRange(min=1), default=3,
                     show_default=True),
        click.option("--trt-max-batch", type=click.IntRange(min=1), default=None,
                     help="Largest batch a TensorRT engine accepts (default: --batch-size)."),
        click.option("--trt-cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Where serialized TensorRT engines go (default: ~/.cache/ppinfer/trt)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32",
                     show_default=True),
        click.option("--cpu-threads", type=click.IntRange(min=1), default=None,
                     help="Math-library threads (default: all cores)."),
        click.option("--mkldnn/--no-mkldnn", default=True, show_default=True,
                     help="oneDNN on the CPU."),
        click.option("--mkldnn-cache-capacity", type=click.IntRange(min=1), default=10,
                     show_default=True, help="Input shapes oneDNN keeps kernels for."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def run_config_from(kw: dict[str, Any], top_k: int = 5):
    from ppinfer.config import RunConfig

    use_gpu = kw.pop("use_gpu")
    gpu_id = kw.pop("gpu_id")
    device = "auto" if use_gpu is None else (f"gpu:{gpu_id}" if use_gpu else "cpu")
    return RunConfig(
        device=device,
        gpu_mem=kw.pop("gpu_mem"),
        ir_optim=kw.pop("ir_optim"),
        use_tensorrt=kw.pop("use_tensorrt"),
        trt_min_subgraph_size=kw.pop("trt_min_subgraph_size"),
        trt_max_batch=kw.pop("trt_max_batch"),
        trt_cache_dir=kw.pop("trt_cache_dir"),
        mkldnn=kw.pop("mkldnn"),
        mkldnn_cache_capacity=kw.pop("mkldnn_cache_capacity"),
        cpu_threads=kw.pop("cpu_threads"),
        precision=kw.pop("precision"),
        batch_size=kw.pop("batch_size"),
        top_k=top_k,
    ).resolve()
