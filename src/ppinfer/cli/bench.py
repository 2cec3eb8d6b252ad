"""``ppinfer bench``."""

from __future__ import annotations

import sys

import click

from ppinfer.cli.main import cli
from ppinfer.cli.options import FiniteFloat, device_options
from ppinfer.config import PRECISIONS

# device_options' single-valued flags that bench takes as comma lists instead
# (ppinfer.api.benchmarking.LIST_VALUED; not imported here so --help stays instant)
LIST_VALUED = ("batch_size", "precision", "cpu_threads")


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def int_list(_ctx, _param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        numbers = [int(v) for v in _comma_list(value)]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        raise click.BadParameter("expected whole numbers of at least 1, comma-separated: 1,8,32")
    return list(dict.fromkeys(numbers))


def precision_list(_ctx, _param, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = _comma_list(value)
    unknown = [n for n in names if n not in PRECISIONS]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown precision {', '.join(unknown) or value!r}: use {', '.join(PRECISIONS)}"
        )
    return list(dict.fromkeys(names))


@cli.command()
@click.option("--model", "models", multiple=True, type=click.Path(),
              help="Model directory; repeatable. Default: the built-in model.")
@click.option("--engine", "engines", default=None,
              help="Comma list of engines (analysis, executor-inference, onnxruntime, ...) or "
                   "all. Default: $PPINFER_ENGINE, else the installed engines --engine auto "
                   "chooses among.")
@click.option("-b", "--batch-size", "batch_sizes", default="1", show_default=True,
              callback=int_list, help="Comma list of batch sizes: 1,8,32.")
@click.option("--precision", "precisions", default=None, callback=precision_list,
              help=f"Comma list of {', '.join(PRECISIONS)}. Default: each model's own, int8 "
                   "for a model ppinfer quantize wrote, else fp32.")
@click.option("--cpu-threads", "threads", default=None, callback=int_list,
              help="Comma list of math-library thread counts (default: all cores).")
@device_options(exclude=LIST_VALUED)
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True,
              help="Iterations run before timing, not counted (the first run is reported apart).")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Timed batches per configuration.")
@click.option("--duration", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Seconds per configuration (default 5 when --iterations is not given; "
                   "with both, whichever comes first).")
@click.option("--rounds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Interleaved rounds the timed batches are shared out over: a machine that "
                   "gets busy mid-run slows every configuration alike.")
@click.option("--input", "input_spec", default="random", show_default=True,
              help="random, or real images: a file, directory or glob.")
@click.option("--end-to-end", is_flag=True,
              help="Also time decode + preprocess + inference + postprocess as predict runs "
                   "them (needs --input PATH).")
@click.option("--baseline", default=None,
              help="ENGINE[:PRECISION] the ratios are to (default onnxruntime:fp32 when it runs, "
                   "else the first engine's fp32).")
@click.option("--json", "json_file", type=click.Path(dir_okay=False), default=None,
              help="Write every figure and the environment to FILE.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Plot throughput and p99 latency against batch size to FILE (.png added when "
                   "FILE has no extension).")
def bench(models, engines, batch_sizes, precisions, threads, warmup, iterations, duration,
          rounds, input_spec, end_to_end, baseline, json_file, plot_file, **device_kw) -> None:
    """Measure engines x batch sizes x precisions x threads on one or more models.

    \b
    ppinfer bench --engine analysis,onnxruntime -b 1,8 --precision fp32,bf16
    ppinfer bench --model out/ --input photos/ --end-to-end --json r.json
    ppinfer bench --engine all --cpu-threads 1,2 --duration 10
    """
    from ppinfer.api.benchmarking import bench_report
    from ppinfer.bench.report import plot_path, print_table
    from ppinfer.errors import ConfigError
    from ppinfer.pipeline.output import check_output_path

    if end_to_end and input_spec == "random":
        raise click.UsageError("--end-to-end times real images: pass --input PATH.")
    for option, path in (("--json", json_file), ("--plot", plot_file)):
        check_output_path(path, option)  # before the run, not after it
    if plot_file:
        plot_file = plot_path(plot_file)  # a plot that cannot be written fails before measuring
    try:
        report = bench_report(
            list(models) or None, engine=engines, batch_size=batch_sizes, precision=precisions,
            cpu_threads=threads, warmup=warmup, iterations=iterations, duration=duration,
            rounds=rounds, input=input_spec, end_to_end=end_to_end, baseline=baseline,
            on_case=_progress, **device_kw,
        )
    except BaseException as exc:
        partial = getattr(exc, "partial_report", None)
        if partial is not None and partial.results:  # keep the finished configurations
            _write_outputs(partial, json_file, plot_file, note=" (the finished configurations)")
        raise
    print_table(report)
    _write_outputs(report, json_file, plot_file)
    if not any(r.status == "ok" for r in report.results):
        raise ConfigError("No configuration ran: the lines above say why each was skipped.")
    if any(r.status == "failed" for r in report.results):
        sys.exit(1)


def _write_outputs(report, json_file: str | None, plot_file: str | None, note: str = "") -> None:
    from ppinfer.bench.report import write_json, write_plot

    if json_file:
        write_json(report, json_file)
        click.echo(f"Wrote {json_file}{note}", err=True)
    if plot_file:
        click.echo(f"Wrote {write_plot(report, plot_file)}{note}", err=True)


def _progress(index: int, total: int, result) -> None:
    head = f"[{index + 1:>{len(str(total))}}/{total}] {result.case.describe()}:"
    if result.measurement is None:
        click.echo(f"{head} {result.status} ({result.reason})", err=True)
        return
    m = result.measurement
    line = f"{head} {m.engine.throughput:.1f} img/s, p99 {m.engine.stats.p99_ms:.1f} ms"
    if m.end_to_end is not None:
        line += f"; end-to-end {m.end_to_end.throughput:.1f} img/s"
    click.echo(line, err=True)
