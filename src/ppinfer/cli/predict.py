"""``ppinfer predict``."""

from __future__ import annotations

import os
import sys

import click

from ppinfer.cli.main import cli
from ppinfer.cli.options import FiniteFloat, device_options, parse_shape, run_config_from
from ppinfer.cli.predict_ray import check_runner_options, ray_options

ENGINE_NAMES = ("analysis", "executor-persistable", "executor-inference", "onnxruntime",
                "openvino")


@cli.command()
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("-i", "--image-file", "--input", "images", multiple=True,
              help="Image file, directory (recursive) or glob; repeatable, and the same as "
                   "giving INPUTS. Default: the sample photo shipped with ppinfer.")
@click.option("--engine", default=None,
              help=f"One of {', '.join(ENGINE_NAMES)} (or a plug-in engine); 'all' runs every "
                   "engine that can run the model and compares their scores; 'auto' measures "
                   "the installed engines once (cached) and runs the fastest that agrees. "
                   "Default: $PPINFER_ENGINE, else auto where a peer of analysis is "
                   "installed, else analysis.")
@click.option("--tolerance", type=FiniteFloat(min=0), default=1e-4, show_default=True,
              help="With --engine all: largest score difference to analysis that still agrees.")
@click.option("--precision-check/--no-precision-check", default=True, show_default=True,
              help="With bf16 or int8: run the first batch at fp32 too and report top-1 "
                   "agreement and the largest score difference (a warning beyond 0.05).")
@click.option("--model", "model", type=click.Path(), default=None,
              help="Model directory (layout detected). Default: the built-in model.")
@click.option("-m", "--model-file", type=click.Path(), default=None,
              help="Program file (model, *.pdmodel, *.json).")
@click.option("-p", "--params-file", type=click.Path(), default=None,
              help="Parameters file, or for executor-persistable the checkpoint.")
@click.option("-d", "--model-dir", type=click.Path(), default=None,
              help="Directory of an (uncombined) inference model.")
@click.option("--model-name", default=None, help="Architecture, for executor-persistable.")
@click.option("--class-num", type=click.IntRange(min=1), default=None,
              help="Classes the checkpoint was trained for (executor-persistable; default "
                   "1000).")
@click.option("--image-shape", callback=parse_shape, default=None, help="Input C,H,W.")
@device_options
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes reported per image.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="One label a line (line i = class i).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines on stdout, one per image.")
@click.option("--save", "save_file", type=click.Path(), default=None,
              help="Also write the JSON lines to FILE (with --runner ray, NAME.parquet: "
                   "Parquet written by Ray Data).")
@click.option("--enable-benchmark", is_flag=True,
              help="Print mean ms per image for preprocess, inference, postprocess.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Refuse images larger than this many pixels (default 100 megapixels).")
@click.option("--max-image-bytes", type=click.IntRange(min=1), default=None,
              help="Refuse image files larger than this many bytes, before reading them "
                   "(default 512 MiB).")
@click.option("--input-list", "input_lists", multiple=True, type=click.Path(dir_okay=False),
              help="Text file of image paths, one a line (for lists too long for a shell; "
                   "- reads standard input; blank lines and lines starting with # are "
                   "skipped); repeatable, combined with -i.")
@ray_options
def predict(inputs, images, engine, tolerance, precision_check, model, model_file, params_file,
            model_dir, model_name, class_num, image_shape, top_k, labels_file, as_json, save_file,
            enable_benchmark, max_pixels, max_image_bytes, input_lists, runner, ray_address,
            actors, actor_cpus, **device_kw) -> None:
    """Predict the top-k classes of images: INPUTS and -i are files, folders or globs.

    \b
    ppinfer predict                          # built-in model, shipped photo
    ppinfer predict photos/*.jpg --model out/ --json
    ppinfer predict -i 'photos/**/*.jpg' -m out/model -p out/params -b 8
    ppinfer predict cat.jpg --engine executor-persistable \\
        --model-name ResNet50_vd -p ckpt/
    ppinfer predict cat.jpg --model out/ --engine all   # engines compared
    ppinfer predict photos/ --runner ray --save out.jsonl   # on Ray Data
    """
    images = (*inputs, *images)
    from ppinfer.pipeline.limits import (
        DEFAULT_MAX_IMAGE_BYTES,
        DEFAULT_MAX_PIXELS,
        set_decoder_pixel_limit,
    )

    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    max_image_bytes = max_image_bytes or DEFAULT_MAX_IMAGE_BYTES
    set_decoder_pixel_limit(max_pixels)  # before OpenCV's first decode reads it

    from ppinfer.api.predictor import open_source
    from ppinfer.engines import get_engine
    from ppinfer.pipeline.inputs import expand_inputs
    from ppinfer.predict import run_predictions

    check_runner_options(click.get_current_context())
    _check_save_target(save_file, runner)
    _check_labels_file(labels_file)
    cpu_threads = device_kw["cpu_threads"]  # None: the runner decides
    if engine is None and os.environ.get("PPINFER_ENGINE", "").strip():
        engine = os.environ["PPINFER_ENGINE"].strip()
    from ppinfer.engines.base import prepare_paddle_for

    prepare_paddle_for([engine])  # before the run options load Paddle's core alone
    config = run_config_from(device_kw, top_k=top_k)
    engine_cls = None if engine in (None, "all", "auto") else get_engine(engine)
    source = open_source(
        model, model_file=model_file, params_file=params_file, model_dir=model_dir,
        model_name=model_name, class_num=class_num, image_shape=image_shape,
        labels=labels_file,
        needs_architecture=engine_cls is not None and engine_cls.needs_architecture,
    )
    config = config.for_model(source.quantized_for)  # no --precision: a quantized model's int8
    if engine is None:
        from ppinfer.engines.auto import default_engine

        engine = default_engine(source)
        engine_cls = None if engine == "auto" else get_engine(engine)
    if not images and not input_lists:
        from ppinfer.pipeline.sample import sample_image_path

        images = (str(sample_image_path()),)
    walked = expand_inputs(images)
    listed = []
    if input_lists:
        from ppinfer.pipeline.input_list import items_from_lists

        listed = items_from_lists(input_lists)
    items = walked
    if listed:
        from ppinfer.pipeline.input_list import merge_inputs

        items = merge_inputs(walked, listed)
    if not items:  # only --input-list, and it named nothing
        from ppinfer.errors import ConfigError

        raise ConfigError(f"The --input-list {', '.join(input_lists)} named no image (blank "
                          "and # comment lines are skipped): nothing to predict.")
    from ppinfer.pipeline.output import ResultWriter, refuse_input_as_save

    refuse_input_as_save(save_file, (item.path for item in walked if item.error is None),
                         listed=(item.path for item in listed))
    if runner == "ray":
        from ppinfer.cli.predict_ray import predict_with_ray

        if engine == "auto":  # chosen here, once; every actor then builds that engine
            from ppinfer.engines.auto import choose_engine, source_for

            choice = choose_engine(source, config)
            engine, source = choice.engine, source_for(choice, source)
        if engine != "all":  # refused in predict_with_ray, in one sentence
            _say_precision_cost(get_engine(engine), source, config)
        predict_with_ray(source, config, items, engine=engine, ray_address=ray_address,
                         actors=actors, actor_cpus=actor_cpus, cpu_threads=cpu_threads,
                         max_pixels=max_pixels, as_json=as_json, save_file=save_file,
                         enable_benchmark=enable_benchmark)
        return
    if engine == "all":
        _predict_all(source, config, items, tolerance, (max_pixels, max_image_bytes), as_json)
        return
    runner = (_auto_engine(source, config, model) if engine == "auto"
              else engine_cls(source, config))
    _say_precision_cost(type(runner), source, config)
    checked = None
    if precision_check and config.precision != "fp32":
        from ppinfer.engines.precision_check import CheckedEngine

        runner = checked = CheckedEngine(runner)

    with ResultWriter(as_json=as_json, save_file=save_file, total=len(items)) as writer:
        summary = run_predictions(
            runner, items, writer.write, max_pixels=max_pixels, max_image_bytes=max_image_bytes,
            on_batch=writer.advance,
        )
    if checked is not None:
        from ppinfer.engines.precision_check import agreement_message

        message = agreement_message(checked)
        if message:
            click.echo(message, err=True)
    if enable_benchmark:  # for people: stderr, so stdout holds only the results
        click.echo(summary.timer.describe(f"{runner.name}, batch {config.batch_size}"),
                   err=True)
    if summary.errors:
        click.echo(f"{summary.errors} of {len(items)} inputs failed; their lines say why.",
                   err=True)
        sys.exit(1)


def _say_precision_cost(engine_cls, source, config) -> None:
    """A float precision asked for on an int8 model: runs, and says what it costs."""
    from ppinfer.engines.base import precision_cost

    note = precision_cost(engine_cls, source, config)
    if note:
        click.echo(f"warning: {note}", err=True)


def _check_save_target(save_file: str | None, runner: str) -> None:
    """--save names a file of JSON lines, or with --runner ray a NAME.parquet folder that may
    be an earlier run's output (checked before any work, so no run is lost to the name)."""
    import os

    from ppinfer.errors import OutputError

    if not save_file:
        return
    if runner == "ray" and save_file.lower().endswith(".parquet"):
        from ppinfer.runners.ray_parquet import check_parquet_output

        check_parquet_output(save_file)
    elif os.path.isdir(save_file):
        raise OutputError(f"The --save file {save_file} is a directory: name a file for the "
                          "JSON lines (a directory is written by --runner ray --save "
                          "NAME.parquet).")
    if not os.path.isdir(os.path.dirname(os.path.abspath(save_file))):  # before any measuring
        raise OutputError(f"Cannot write the --save file {save_file}: No such file or "
                          "directory.")


def _check_labels_file(labels_file: str | None) -> None:
    """A --labels file that cannot be read is refused before any engine is built or measured
    (its line count is checked against the model's classes later)."""
    if labels_file:
        from ppinfer.errors import ConfigError
        from ppinfer.io.safe_io import CARD_MAX_BYTES, read_regular_file

        read_regular_file(labels_file, CARD_MAX_BYTES, ConfigError, what="label file ")


def _auto_engine(source, config, model=None):
    """The engine --engine auto picks (measured once, then cached), built; its line on stderr."""
    from ppinfer.engines.auto import choose_engine, engine_for
    from ppinfer.runtime.quiet import verbose

    def announce() -> None:
        click.echo("Measuring the installed engines for --engine auto (once for this model "
                   "and setting: 10-20 s)...", err=True)

    choice = choose_engine(source, config, announce=announce)
    click.echo(choice.describe() if verbose() else auto_line(choice, model), err=True)
    return engine_for(choice, source, config)


def auto_line(choice, model=None) -> str:
    """One short sentence: the engine, why, and whether measured now or cached; every figure
    is in ``--verbose`` and ``ppinfer engines --model M``."""
    if choice.quantized:
        return choice.describe()
    if choice.margin is None:
        why = "the only engine that runs this model"
    elif not choice.near_tie:
        why = f"{100 * choice.margin:.0f}% faster than {choice.margin_over}"
    elif choice.unsure:  # the rounds could not separate them: the faster-measured one ran
        why = f"measured fastest, {', '.join(choice.unsure)} within the noise"
    else:  # clearly within 3%: the tie rule picked
        rule = ("a tie goes to analysis" if "analysis" in (choice.engine, *choice.tied)
                else "a tie goes to the first by name")
        why = f"within 3% of {', '.join(choice.tied)}; {rule}"
    when = "measured now" if not choice.cached else f"cached {choice.measured_at[:10]}"
    if choice.busy:
        again = "ppinfer engines --refresh" + (" --model DIR" if model else "")
        when += f", on a busy machine: '{again}' when quiet"
    elif choice.not_cached:
        when += ", not cached"
    return f"--engine auto: {choice.label} ({why}; {when})."


def _predict_all(source, config, items, tolerance: float, limits: tuple[int, int],
                 as_json: bool) -> None:
    """One row per engine: top-1, time, largest score difference to the reference engine."""
    import json

    from ppinfer.engines.parity import compare_engines

    report = compare_engines(source, config, items, tolerance=tolerance, max_pixels=limits[0],
                             max_image_bytes=limits[1])
    if as_json:
        for run in report.runs:
            click.echo(json.dumps(run.to_json_dict(), ensure_ascii=False))
        for result in report.errors:
            click.echo(result.to_json_line())
    else:
        from ppinfer.cli.parity_table import print_parity

        print_parity(report, source)
    if report.disagreeing:
        worst = max(report.disagreeing, key=lambda r: r.max_abs_diff)
        agree = "" if worst.top1_share == 1.0 else (
            f" and agrees on top-1 for {worst.top1_agree} of {len(worst.results)} images")
        if worst.precision == "fp32":
            click.echo(f"{worst.engine} differs from {report.reference} by "
                       f"{worst.max_abs_diff:.2e}{agree}, more than --tolerance {tolerance:g}.",
                       err=True)
        else:
            click.echo(f"{worst.engine} {worst.precision} differs from {report.reference} "
                       f"{report.reference_precision} "
                       f"by {worst.max_abs_diff:.2e}{agree}, more than the {worst.precision} "
                       f"tolerance {report.tolerance_for(worst):g}.", err=True)
        sys.exit(1)
    if report.errors:
        sys.exit(1)
    if not any(r.probs is not None for r in report.runs):
        from ppinfer.errors import ConfigError

        raise ConfigError("No engine could run this model; the table says why.")
