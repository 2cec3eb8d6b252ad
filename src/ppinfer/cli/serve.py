"""``ppinfer serve``."""

from __future__ import annotations

import click

from ppinfer.cli.main import cli
from ppinfer.cli.options import FiniteFloat, device_options

RAY_ONLY = ("ray_address", "replicas", "autoscale", "replica_cpus")


def ray_serve_options(fn):
    """--runner, --ray-address, --replicas, --autoscale, --replica-cpus."""
    options = [
        click.option("--runner", type=click.Choice(("local", "ray")), default="local",
                     show_default=True,
                     help="Host the app here (uvicorn) or on Ray Serve (pip install "
                          "'ppinfer[ray]')."),
        click.option("--ray-address", envvar="RAY_ADDRESS", default=None, metavar="ADDR",
                     help="With --runner ray: the cluster (e.g. head:6379; env RAY_ADDRESS). "
                          "Default: start a local Ray and stop it on exit."),
        click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True,
                     help="With --runner ray: replicas, one engine each."),
        click.option("--autoscale", default=None, metavar="MIN:MAX",
                     help="With --runner ray: let Ray Serve keep MIN to MAX replicas by load "
                          "(instead of --replicas)."),
        click.option("--replica-cpus", type=FiniteFloat(min=0, min_open=True), default=1.0,
                     show_default=True,
                     help="With --runner ray: CPUs each replica reserves (fractions allowed); "
                          "its engine runs as many math threads."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def check_ray_serve_options(ctx: click.Context) -> None:
    """Ray's options without --runner ray would silently do nothing; --replicas and
    --autoscale say different things."""
    from click.core import ParameterSource

    given = {name for name in RAY_ONLY
             if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE}
    if ctx.params["runner"] != "ray" and given:
        flag = "--" + sorted(given)[0].replace("_", "-")
        raise click.UsageError(f"{flag} applies to --runner ray; add --runner ray.", ctx)
    if {"replicas", "autoscale"} <= given:
        raise click.UsageError("Give --replicas N or --autoscale MIN:MAX, not both.", ctx)


@cli.command()
@click.option("--model", type=click.Path(), default=None,
              help="Model directory (layout detected). Default: the built-in model.")
@click.option("--engine", default=None,
              help="An engine, or auto. Default: $PPINFER_ENGINE, else auto where a peer of "
                   "analysis is installed, else analysis.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines in.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port (8080 is PaddleX's).")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most images one engine call takes.")
@click.option("--max-delay-ms", type=FiniteFloat(min=0), default=5.0, show_default=True,
              help="Longest a request waits for others to share its engine call.")
@click.option("--max-queue", type=click.IntRange(min=1), default=256, show_default=True,
              help="Images waiting at most; beyond, 503 with Retry-After.")
@click.option("--timeout", "timeout_s", type=FiniteFloat(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds a request may wait before 504.")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=32 * 1024 * 1024,
              show_default=True, help="Largest request body; beyond, 413.")
@click.option("--name", default=None,
              help="The model's name in /v2/models/NAME (default: the card's model name).")
@click.option("--allow-urls", is_flag=True,
              help="Let PaddleX's 'image' be a URL the server fetches (off: no fetches).")
@device_options
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes returned per image unless a request asks otherwise.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Refuse images larger than this many pixels (default 100 megapixels).")
@ray_serve_options
@click.pass_context
def serve(ctx, model, engine, host, port, max_batch, max_delay_ms, max_queue, timeout_s,
          max_body_bytes, name, allow_urls, top_k, max_pixels, runner, ray_address, replicas,
          autoscale, replica_cpus, **device_kw) -> None:
    """Serve the model over HTTP: PaddleX's, KServe v2's and a plain endpoint, a page at /.

    \b
    ppinfer serve                                  # the built-in model on :8080
    ppinfer serve --model out/lite0 --max-batch 16
    curl --data-binary @cat.jpg localhost:8080/predict
    ppinfer serve --runner ray --replicas 2        # the same app on Ray Serve
    """
    from ppinfer.serving.server import serve as run

    check_ray_serve_options(ctx)
    if autoscale is not None:
        from ppinfer.serving.ray_host import parse_autoscale

        autoscale = parse_autoscale(autoscale)  # before the model loads
    options = {k: v for k, v in device_kw.items() if v is not None}

    def ready(served, url: str) -> None:
        if runner == "ray":  # what Ray Serve deployed, with its replicas' build times
            click.echo(served.describe() + " (Ctrl-C stops.)", err=True)
            return
        click.echo(f"Serving {served.source.display_name} on {served.engine.name} "
                   f"{served.config.precision} at {url} (Ctrl-C stops).", err=True)

    run(model, host=host, port=port, engine=engine, on_ready=ready, max_batch=max_batch,
        max_delay_ms=max_delay_ms, max_queue=max_queue, timeout_s=timeout_s,
        max_body_bytes=max_body_bytes, name=name, allow_urls=allow_urls, top_k=top_k,
        max_pixels=max_pixels, runner=runner, ray_address=ray_address, replicas=replicas,
        autoscale=autoscale, replica_cpus=replica_cpus, **options)
