"""``ppinfer predict --runner ray``: the options, and the output side of a Ray run.

The run itself is :mod:`ppinfer.runners.ray_runner`; this module only writes what comes back,
with the local run's contract: JSON lines (stdout with ``--json``, ``--save FILE``) or a table,
one line per input in input order, an error line for each unreadable input and exit 1 then.
``--save NAME.parquet`` instead has Ray Data write Parquet from the workers.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable

import click

from ppinfer.runners import RUNNERS


def ray_options(fn: Callable) -> Callable:
    """--runner, --ray-address, --actors, --actor-cpus."""
    options = [
        click.option("--runner", type=click.Choice(RUNNERS), default="local", show_default=True,
                     help="Where to run: this process, or Ray Data (pip install 'ppinfer[ray]')."),
        click.option("--ray-address", envvar="RAY_ADDRESS", default=None, metavar="ADDR",
                     help="Ray cluster to run on (e.g. ray://head:10001 or head:6379; env "
                          "RAY_ADDRESS). Default: start a local Ray and stop it afterwards."),
        click.option("--actors", type=click.IntRange(min=1), default=1, show_default=True,
                     help="With --runner ray: predictor actors, one engine each."),
        click.option("--actor-cpus", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="With --runner ray: CPUs each actor reserves (fractions allowed). "
                          "Default: what is left after a quarter (at least 1) for decoding, "
                          "shared by the actors."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def check_runner_options(ctx: click.Context) -> None:
    """Ray's options given to a local run would silently do nothing: refuse them."""
    if ctx.params["runner"] == "ray":
        return
    from click.core import ParameterSource

    for name in ("actors", "actor_cpus", "ray_address"):
        if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            flag = "--" + name.replace("_", "-")
            raise click.UsageError(f"{flag} applies to --runner ray; add --runner ray.", ctx)


def predict_with_ray(source, config, items, *, engine: str, ray_address: str | None,
                     actors: int, actor_cpus: float | None, cpu_threads: int | None,
                     max_pixels: int, as_json: bool, save_file: str | None,
                     enable_benchmark: bool) -> None:
    from ppinfer.errors import ConfigError
    from ppinfer.runners.ray_runner import RayOptions

    if engine == "all":
        raise ConfigError("--engine all compares engines in this process: use --runner local.")
    options = RayOptions(address=ray_address, actors=actors, actor_cpus=actor_cpus)
    out = sys.stdout
    # Ray prints its raylet notices (an actor died, a task is retried) on sys.stdout, where they
    # would break --json lines: during the run they go to stderr, the results to ``out``.
    with contextlib.redirect_stdout(sys.stderr):
        _run(source, config, items, engine=engine, options=options, cpu_threads=cpu_threads,
             max_pixels=max_pixels, as_json=as_json, save_file=save_file,
             enable_benchmark=enable_benchmark, out=out)


def _run(source, config, items, *, engine, options, cpu_threads, max_pixels, as_json,
         save_file, enable_benchmark, out) -> None:
    from ppinfer.runners.ray_runner import RayRunReport, predict_on_ray

    if save_file and save_file.lower().endswith(".parquet"):
        from ppinfer.runners.ray_parquet import predict_to_parquet

        start = time.perf_counter()
        report = predict_to_parquet(source, config, items, save_file, engine=engine,
                                    options=options, cpu_threads=cpu_threads,
                                    max_pixels=max_pixels, progress=sys.stderr.isatty())
        _report_run(report, len(items), time.perf_counter() - start)
        click.echo(f"Wrote {len(items)} results to {save_file} (Parquet).", err=True)
        if as_json:
            from ppinfer.runners.ray_parquet import read_results

            for result in read_results(save_file):
                click.echo(result.to_json_line(), file=out)
        _exit_if_errors(report.errors, len(items))
        return

    from ppinfer.pipeline.output import ResultWriter

    report = RayRunReport()
    start = time.perf_counter()
    with ResultWriter(as_json=as_json, save_file=save_file, total=len(items),
                      stream=out) as writer:
        summary = predict_on_ray(source, config, items, writer.write, engine=engine,
                                 options=options, cpu_threads=cpu_threads,
                                 max_pixels=max_pixels, on_batch=writer.advance, report=report)
    _report_run(report, len(items), time.perf_counter() - start)
    if enable_benchmark:
        click.echo(summary.timer.describe(
            f"{engine} on Ray, batch {config.batch_size}, summed over workers"), err=True)
    _exit_if_errors(summary.errors, len(items))


def _report_run(report, total: int, seconds: float) -> None:
    """One line on stderr: the actors, their engines' build times, the throughput."""
    plan = report.plan
    builds = sorted(report.build_seconds.values())
    shown = ", ".join(f"{s:.2f}" for s in builds) or "-"
    click.echo(
        f"Ray: {plan.actors} actor(s) of {plan.actor_cpus:g} CPUs, {plan.engine_threads} "
        f"thread(s) each; engine build s per actor that predicted ({len(builds)}): {shown}; "
        f"{total} inputs in {seconds:.1f} s ({total / max(seconds, 1e-9):.1f} images/s).",
        err=True,
    )


def _exit_if_errors(errors: int, total: int) -> None:
    if errors:
        click.echo(f"{errors} of {total} inputs failed; their lines say why.", err=True)
        sys.exit(1)
