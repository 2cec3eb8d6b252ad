"""``ppinfer quantize``."""

from __future__ import annotations

import click

from ppinfer.cli.main import cli

ENGINES = ("analysis", "openvino", "onnxruntime")
MIN_SAMPLES = 4  # quantization.calibration.MIN_CALIBRATION (not imported: it brings NumPy)


@cli.command()
@click.option("--model", type=click.Path(), default=None,
              help="Float model directory (an export). Default: the built-in model.")
@click.option("--calib", "calib", multiple=True, required=True,
              help="Calibration images: a file, folder or glob; repeatable. About 30% (by a "
                   "hash of each path) are held out to verify.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Directory for the int8 model.")
@click.option("--samples", type=click.IntRange(min=MIN_SAMPLES), default=64, show_default=True,
              help="Most images to calibrate on (the rest of --calib is not used).")
@click.option("--engine", type=click.Choice(ENGINES), default="analysis", show_default=True,
              help="Engine to quantize for, with its own tool: Paddle's PTQ, NNCF, or "
                   "ONNX Runtime's quantize_static.")
@click.option("--force", is_flag=True, help="Replace an existing model at -o.")
def quantize(model, calib, output, samples, engine, force) -> None:
    """Post-training int8 from calibration images, verified against fp32.

    \b
    ppinfer quantize --calib photos/ -o out/lite0-int8     # built-in model
    ppinfer quantize --model out/r50 --calib photos/ -o out/r50-int8 \\
        --engine openvino
    ppinfer predict cat.jpg --model out/r50-int8   # openvino int8, per its card
    """
    from ppinfer.api.quantizing import quantize as quantize_api

    result = quantize_api(list(calib), output, model=model, engine=engine, samples=samples,
                          force=force, progress=lambda line: click.echo(line, err=True))
    click.echo(result.describe())
    click.echo(result.verification.describe())
    warning = result.verification.warning(engine)
    if warning:
        click.echo(warning, err=True)
