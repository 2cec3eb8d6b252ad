"""The ``ppinfer`` command line: parse, call the library, format. Nothing else lives here.

Heavy modules (paddle, cv2, the engines) are imported inside the commands so that ``--help`` and
usage errors are instant. Library errors (:class:`ppinfer.errors.PPInferError`) become one
sentence on stderr and the exit status from ../shared/CLI.md; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from ppinfer import __version__
from ppinfer.config import PRECISIONS
from ppinfer.errors import PPInferError

BUILTIN_ENGINE_CHOICES = ("analysis", "executor-persistable", "executor-inference")


class PPInferGroup(click.Group):
    """Turns library errors into one line and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PPInferError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=PPInferGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ppinfer")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """PaddlePaddle image classification: export a checkpoint, predict on images, measure speed.

    \b
    ppinfer predict -i photo.jpg                    # built-in model, top-5
    ppinfer export -m ResNet50_vd -p ckpt/ -o out/  # checkpoint -> inference model
    ppinfer predict -i photos/ --model out/ --json  # your model, JSON lines
    """
    ctx.ensure_object(dict)["debug"] = debug


def _parse_shape(_ctx, _param, value: str | None) -> tuple[int, int, int] | None:
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
                     help="Run on a GPU. Default: GPU when this Paddle has CUDA and one is visible."),
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


# -- export ----------------------------------------------------------------------------------
@cli.command()
@click.option("-m", "--model-name", required=True, help="Architecture (see `ppinfer models`).")
@click.option("-p", "--params", "checkpoint", required=True, type=click.Path(),
              help="Checkpoint: persistable directory, .pdparams, or a PyTorch file.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Output directory.")
@click.option("--class-num", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--image-shape", callback=_parse_shape, default=None,
              help="Input C,H,W (default: the architecture's, 3,224,224).")
@click.option("--format", "fmt", type=click.Choice(("pir", "legacy", "seed")), default=None,
              help="inference.json (pir), inference.pdmodel (legacy) or model + params (seed). "
                   "Default: native to the installed Paddle.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="Label file (one a line) to store in inference.yml.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--no-validate", is_flag=True, help="Skip the training-vs-exported score check.")
def export(model_name, checkpoint, output, class_num, image_shape, fmt, labels_file, force,
           no_validate) -> None:
    """Build an architecture, load a checkpoint, save an inference model.

    \b
    ppinfer export -m ResNet50_vd -p ResNet50_vd_pretrained/ -o out/ResNet50_vd
    ppinfer export -m ResNet50_vd -p best.pdparams -o out/ --class-num 102 --format legacy
    """
    from ppinfer.export import export_model

    result = export_model(
        model_name, checkpoint, output, class_num=class_num, input_shape=image_shape, fmt=fmt,
        labels_file=labels_file, force=force, validate=not no_validate,
    )
    click.echo(f"Exported {result.model_name} ({result.class_num} classes, input "
               f"{'x'.join(map(str, result.input_shape))}, {result.format}) to {result.output}: "
               f"{', '.join(result.files)} in {result.seconds:.1f}s.")
    if result.max_abs_diff is not None:
        click.echo(f"Check: exported model vs training program, max |score diff| = "
                   f"{result.max_abs_diff:.2e}.")


# -- predict ---------------------------------------------------------------------------------
def _engine_choice() -> click.Choice:
    return click.Choice(BUILTIN_ENGINE_CHOICES)


@cli.command()
@click.option("-i", "--image-file", "images", multiple=True,
              help="Image file, directory (recursive) or glob; repeatable. "
                   "Default: the sample photo shipped with ppinfer.")
@click.option("--engine", default="analysis", show_default=True,
              help=f"One of {', '.join(BUILTIN_ENGINE_CHOICES)} (or a plug-in engine).")
@click.option("--model", "model", type=click.Path(), default=None,
              help="Model directory (layout detected). Default: the built-in model.")
@click.option("-m", "--model-file", type=click.Path(), default=None,
              help="Program file (model, *.pdmodel, *.json).")
@click.option("-p", "--params-file", type=click.Path(), default=None,
              help="Parameters file, or for executor-persistable the checkpoint.")
@click.option("-d", "--model-dir", type=click.Path(), default=None,
              help="Directory of an (uncombined) inference model.")
@click.option("--model-name", default=None, help="Architecture, for executor-persistable.")
@click.option("--class-num", type=click.IntRange(min=1), default=None)
@click.option("--image-shape", callback=_parse_shape, default=None, help="Input C,H,W.")
@device_options
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="One label a line (line i = class i).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout, one per image.")
@click.option("--save", "save_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the JSON lines to FILE.")
@click.option("--enable-benchmark", is_flag=True,
              help="Print mean ms per image for preprocess, inference, postprocess.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Refuse images larger than this many pixels (default 100 megapixels).")
def predict(images, engine, model, model_file, params_file, model_dir, model_name, class_num,
            image_shape, top_k, labels_file, as_json, save_file, enable_benchmark, max_pixels,
            **device_kw) -> None:
    """Predict the top-k classes of images.

    \b
    ppinfer predict                                   # built-in model, shipped photo
    ppinfer predict -i cat.jpg --model out/ --json
    ppinfer predict -i 'photos/**/*.jpg' -m out/model -p out/params -b 8
    ppinfer predict -i cat.jpg --engine executor-persistable --model-name ResNet50_vd -p ckpt/
    """
    from ppinfer.engines import create_engine, get_engine
    from ppinfer.paddle_env import paddle_env
    from ppinfer.pipeline.inputs import expand_inputs
    from ppinfer.pipeline.preprocess import DEFAULT_MAX_PIXELS
    from ppinfer.predict import run_predictions
    from ppinfer.source import resolve_source

    config = run_config_from(device_kw, top_k=top_k)
    engine_cls = get_engine(engine)
    if model is None and model_file is None and model_dir is None and params_file is None:
        from ppinfer.default_model import default_model_dir

        model = str(default_model_dir())
    source = resolve_source(
        model=model, model_file=model_file, params_file=params_file, model_dir=model_dir,
        model_name=model_name, class_num=class_num, image_shape=image_shape,
        labels_file=labels_file, needs_architecture=engine_cls.needs_architecture,
        prefer=paddle_env().native_format,
    )
    if not images:
        from ppinfer.default_model import sample_image_path

        images = (str(sample_image_path()),)
    items = expand_inputs(images)
    runner = create_engine(engine, source, config)

    from ppinfer.output import ResultWriter

    with ResultWriter(as_json=as_json, save_file=save_file, total=len(items)) as writer:
        summary = run_predictions(
            runner, items, writer.write, max_pixels=max_pixels or DEFAULT_MAX_PIXELS,
            on_batch=writer.advance,
        )
    if enable_benchmark:
        ms = summary.timer.ms_per_image()
        click.echo(
            f"Mean per image over {summary.timer.images} images ({runner.name}, batch "
            f"{config.batch_size}): preprocess {ms['preprocess']:.2f} ms, inference "
            f"{ms['inference']:.2f} ms, postprocess {ms['postprocess']:.2f} ms.",
            err=as_json,
        )
    if summary.errors:
        click.echo(f"{summary.errors} of {len(items)} inputs failed; their lines say why.",
                   err=True)
        sys.exit(1)


# -- models / info ---------------------------------------------------------------------------
@cli.command("models")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def models_cmd(pattern: str, as_json: bool) -> None:
    """List the registered architectures, with parameter counts and input size.

    \b
    ppinfer models
    ppinfer models 'ResNet*_vd'
    """
    from ppinfer.models.info import model_rows

    rows = model_rows(pattern)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Column, Table

    table = Table("family", "parameters", "input", "preprocess")
    table.columns.insert(0, Column("model", no_wrap=True))
    for row in rows:
        table.add_row(row["name"], row["family"], f"{row['parameters'] / 1e6:.2f}M",
                      "x".join(map(str, row["input_shape"])), row["preprocess"])
    Console().print(table)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def info(as_json: bool) -> None:
    """Show the installed Paddle (version, IR, CUDA / TensorRT / oneDNN) and this machine."""
    from ppinfer.paddle_env import paddle_env

    env = paddle_env()
    interesting = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
    facts = {
        "ppinfer": __version__,
        "paddle": env.version,
        "ir": "PIR" if env.pir_default else "legacy",
        "native_export_format": env.native_format,
        "cuda": env.with_cuda,
        "tensorrt": env.tensorrt_version or False,
        "onednn": env.with_onednn,
        "gpus": env.gpu_count,
        "cpu": env.cpu_model,
        "cores": env.cpu_count,
        "cpu_features": [f for f in interesting if f in env.cpu_flags],
        "python": sys.version.split()[0],
    }
    if as_json:
        click.echo(json.dumps(facts))
        return
    width = max(map(len, facts))
    for key, value in facts.items():
        if isinstance(value, list):
            value = " ".join(value) or "none"
        click.echo(f"{key:<{width}}  {value}")


def main() -> None:
    """Console entry point. Paddle's C++ side sometimes prints to fd 1; send that to stderr so
    stdout carries only ppinfer's output (``--json`` lines stay parseable)."""
    try:
        out_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = open(out_fd, "w", buffering=1, encoding="utf-8", closefd=True)  # noqa: SIM115
    except OSError:
        pass
    cli(prog_name="ppinfer")
