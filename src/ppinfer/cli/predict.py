"""``ppinfer predict``."""

from __future__ import annotations

import sys

import click

from ppinfer.cli.main import cli
from ppinfer.cli.options import device_options, parse_shape, run_config_from
from ppinfer.cli.predict_ray import check_runner_options, ray_options

ENGINE_NAMES = ("analysis", "executor-persistable", "executor-inference", "onnxruntime")


@cli.command()
@click.option("-i", "--image-file", "images", multiple=True,
              help="Image file, directory (recursive) or glob; repeatable. "
                   "Default: the sample photo shipped with ppinfer.")
@click.option("--engine", default="analysis", show_default=True,
              help=f"One of {', '.join(ENGINE_NAMES)} (or a plug-in engine); 'all' runs every "
                   "engine that can run the model and compares their scores.")
@click.option("--tolerance", type=float, default=1e-4, show_default=True,
              help="With --engine all: largest score difference to analysis that still agrees.")
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
@click.option("--image-shape", callback=parse_shape, default=None, help="Input C,H,W.")
@device_options
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="One label a line (line i = class i).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout, one per image.")
@click.option("--save", "save_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the JSON lines to FILE (with --runner ray, NAME.parquet: "
                   "Parquet written by Ray Data).")
@click.option("--enable-benchmark", is_flag=True,
              help="Print mean ms per image for preprocess, inference, postprocess.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Refuse images larger than this many pixels (default 100 megapixels).")
@click.option("--input-list", "input_lists", multiple=True, type=click.Path(dir_okay=False),
              help="Text file of image paths, one a line (for lists too long for a shell); "
                   "repeatable, combined with -i.")
@ray_options
def predict(images, engine, tolerance, model, model_file, params_file, model_dir, model_name,
            class_num, image_shape, top_k, labels_file, as_json, save_file, enable_benchmark,
            max_pixels, input_lists, runner, ray_address, actors, actor_cpus,
            **device_kw) -> None:
    """Predict the top-k classes of images.

    \b
    ppinfer predict                                   # built-in model, shipped photo
    ppinfer predict -i cat.jpg --model out/ --json
    ppinfer predict -i 'photos/**/*.jpg' -m out/model -p out/params -b 8
    ppinfer predict -i cat.jpg --engine executor-persistable --model-name ResNet50_vd -p ckpt/
    ppinfer predict -i cat.jpg --model out/ --engine all   # every engine, scores compared
    ppinfer predict -i photos/ --runner ray --actors 2 --save out.jsonl   # on Ray Data
    """
    from ppinfer.engines import create_engine, get_engine
    from ppinfer.paddle_env import paddle_env
    from ppinfer.pipeline.decode import DEFAULT_MAX_PIXELS
    from ppinfer.pipeline.inputs import expand_inputs
    from ppinfer.predict import run_predictions
    from ppinfer.source import resolve_source

    check_runner_options(click.get_current_context())
    cpu_threads = device_kw["cpu_threads"]  # None: the runner decides
    config = run_config_from(device_kw, top_k=top_k)
    engine_cls = None if engine == "all" else get_engine(engine)
    needs_architecture = engine_cls is not None and engine_cls.needs_architecture
    if model is None and model_file is None and model_dir is None and params_file is None:
        from ppinfer.default_model import default_model_dir

        model = str(default_model_dir())
    source = resolve_source(
        model=model, model_file=model_file, params_file=params_file, model_dir=model_dir,
        model_name=model_name, class_num=class_num, image_shape=image_shape,
        labels_file=labels_file, needs_architecture=needs_architecture,
        prefer=paddle_env().native_format,
    )
    if not images and not input_lists:
        from ppinfer.default_model import sample_image_path

        images = (str(sample_image_path()),)
    items = expand_inputs(images)
    if input_lists:
        from ppinfer.pipeline.input_list import items_from_lists, merge_inputs

        items = merge_inputs(items, items_from_lists(input_lists))
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    if runner == "ray":
        from ppinfer.cli.predict_ray import predict_with_ray

        predict_with_ray(source, config, items, engine=engine, ray_address=ray_address,
                         actors=actors, actor_cpus=actor_cpus, cpu_threads=cpu_threads,
                         max_pixels=max_pixels, as_json=as_json, save_file=save_file,
                         enable_benchmark=enable_benchmark)
        return
    if engine == "all":
        _predict_all(source, config, items, tolerance, max_pixels, as_json)
        return
    runner = create_engine(engine, source, config)

    from ppinfer.output import ResultWriter

    with ResultWriter(as_json=as_json, save_file=save_file, total=len(items)) as writer:
        summary = run_predictions(
            runner, items, writer.write, max_pixels=max_pixels,
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


def _predict_all(source, config, items, tolerance: float, max_pixels: int, as_json: bool) -> None:
    """One row per engine: top-1, time, largest score difference to the reference engine."""
    import json

    from ppinfer.parity import compare_engines

    report = compare_engines(source, config, items, tolerance=tolerance, max_pixels=max_pixels)
    if as_json:
        for run in report.runs:
            click.echo(json.dumps(run.to_json_dict(), ensure_ascii=False))
        for result in report.errors:
            click.echo(result.to_json_line())
    else:
        from rich.console import Console
        from rich.table import Column, Table

        table = Table(Column("engine", no_wrap=True), "top-1", "build s", "ms/image",
                      f"max |Δ score| vs {report.reference}", title=source.display_name)
        for run in report.runs:
            if run.skipped:
                table.add_row(run.engine, f"[dim]skipped: {run.skipped}[/dim]", "", "", "")
                continue
            tops = {(r.class_ids[0], r.label_names[0]) for r in run.results}
            top1 = (f"{run.results[0].class_ids[0]} {run.results[0].label_names[0]}"
                    if len(run.results) == 1 else f"{len(tops)} distinct over {len(run.results)}")
            diff = run.max_abs_diff
            mark = "" if diff is None or diff <= tolerance else " [red]✗[/red]"
            shown = f"{diff:.2e}{mark}" if diff is not None else ""
            table.add_row(run.engine, top1, f"{run.build_seconds:.2f}", f"{run.ms_per_image:.2f}",
                          shown)
        Console().print(table)
        for result in report.errors:
            click.echo(f"{result.file_name}: {result.error}", err=True)
    if report.disagreeing:
        worst = max(report.disagreeing, key=lambda r: r.max_abs_diff)
        click.echo(f"{worst.engine} differs from {report.reference} by {worst.max_abs_diff:.2e}, "
                   f"more than --tolerance {tolerance:g}.", err=True)
        sys.exit(1)
    if report.errors:
        sys.exit(1)
    if not any(r.probs is not None for r in report.runs):
        from ppinfer.errors import ConfigError

        raise ConfigError("No engine could run this model; the table says why.")
