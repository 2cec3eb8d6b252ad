"""``ppinfer models`` and ``ppinfer info``."""

from __future__ import annotations

import json
import os
import sys

import click

from ppinfer import __version__
from ppinfer.cli.main import cli
from ppinfer.config import PRECISIONS


@cli.command("models")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model.")
def models_cmd(pattern: str, as_json: bool) -> None:
    """List the registered architectures, with parameter counts and input size.

    PATTERN matches a name or an alias (PaddleX's names such as PP-LCNet_x1_0).

    \b
    ppinfer models
    ppinfer models 'ResNet*_vd'
    ppinfer models 'PP-*'
    """
    from ppinfer.models.info import model_rows

    rows = model_rows(pattern)
    if not rows and pattern:
        from ppinfer.errors import UnknownNameError

        raise UnknownNameError(f"No architecture matches {pattern!r}: `ppinfer models` lists "
                               "them all, by PaddleClas's and PaddleX's names.")
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    from rich.table import Column, Table

    from ppinfer.pipeline.output import console as Console  # noqa: N812

    # Names are never cut (aliases go on their own lines under the name). Below 110 columns
    # (an 80-column terminal) the family and preprocess columns are left out so the longest
    # name (SwinTransformer_base_patch4_window12_384) and the figures fit whole; a file or a
    # pipe gets them all (--json has everything).
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=160)
    wide = console.width >= 110
    columns = [Column("model (aliases)", no_wrap=True)]
    if wide:
        columns.append(Column("family", no_wrap=True))
    columns += [Column("params", no_wrap=True), Column("input", no_wrap=True)]
    if wide:
        columns.append(Column("preprocess"))
    table = Table(*columns)
    for row in rows:
        name = "\n".join([row["name"], *(f"[dim]{alias}[/dim]" for alias in row["aliases"])])
        cells = [name, f"{row['parameters'] / 1e6:.2f}M", "x".join(map(str, row["input_shape"]))]
        if wide:
            cells[1:1] = [row["family"]]
            cells.append(row["preprocess"])
        table.add_row(*cells)
    console.print(table)


# Distributions whose version `info` reports beside Paddle's (False when not installed).
PEERS = ("onnxruntime", "paddle2onnx", "openvino", "ray", "fastapi", "uvicorn")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def info(as_json: bool) -> None:
    """Show the installed Paddle (version, IR, CUDA / TensorRT / oneDNN), the peers' and
    OpenCV's versions, and this machine.

    \b
    ppinfer info
    ppinfer info --json
    """
    from ppinfer.pipeline.opencv import describe_opencv
    from ppinfer.runtime.paddle_env import package_version, paddle_env

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
        "opencv": describe_opencv(),
        # the peers' versions: what the other engines and runners would run with
        **{name: package_version(name) or False for name in PEERS},
    }
    if as_json:
        click.echo(json.dumps(facts))
        return
    width = max(map(len, facts))
    for key, value in facts.items():
        if isinstance(value, list):
            value = " ".join(value) or "none"
        elif value is False and key in PEERS:
            value = "not installed"
        click.echo(f"{key:<{width}}  {value}")


@cli.command("engines")
@click.option("--model", type=click.Path(), default=None,
              help="Also measure which engine --engine auto picks for this model (cached).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=None,
              help="The precision --engine auto's choice is for (default: the model's, int8 "
                   "for one ppinfer quantize wrote, else fp32).")
@click.option("-b", "--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="The batch size --engine auto's choice is for.")
@click.option("--cpu-threads", type=click.IntRange(min=1), default=None,
              help="Math-library threads (default: all cores).")
@click.option("--refresh", is_flag=True,
              help="Measure --engine auto's choice again (without --model: the built-in "
                   "model's).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per engine.")
def engines_cmd(model, precision, batch_size, cpu_threads, refresh, as_json: bool) -> None:
    """List the engines (built-in and plug-in), the model layouts each can run and whether it
    is installed; with --model, the engine --engine auto picks and the figures it measured.

    \b
    ppinfer engines
    ppinfer engines --model out/ResNet50_vd --precision bf16 -b 8
    """
    from ppinfer.engines import ENGINES, list_engines
    from ppinfer.modelfiles.formats import KIND_FILES

    rows = []
    for name in list_engines():
        cls = ENGINES[name]
        layouts = ", ".join(KIND_FILES.get(kind, kind) for kind in sorted(cls.layouts))
        runs = f"architecture + checkpoint ({layouts})" if cls.needs_architecture else layouts
        rows.append({"name": name, "runs": runs, "precisions": sorted(cls.precisions),
                     "installed": cls.missing() is None, "about": cls.summary})
    if model is None and refresh:
        from ppinfer.api.builtin_model import default_model_dir

        model = str(default_model_dir())
    if model is not None:
        _auto_choice(model, precision, batch_size, cpu_threads, refresh, as_json)
        return
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    from rich.table import Column, Table

    from ppinfer.cli.parity_table import NARROW
    from ppinfer.pipeline.output import console as Console  # noqa: N812

    console = Console()
    if console.width < NARROW:  # a table would cut its cells: a block per engine instead
        import textwrap

        from rich.text import Text

        width = max(console.width, 20)
        for row in rows:
            console.print(Text(row["name"], style="bold").append(
                "" if row["installed"] else " (not installed)", style="dim"))
            for part in (f"runs {row['runs']}", row["about"]):
                console.print(Text(textwrap.fill(part, width, initial_indent="  ",
                                                 subsequent_indent="  ")), soft_wrap=True)
        return
    table = Table(Column("engine", no_wrap=True), "runs", "installed", "about")
    for row in rows:
        table.add_row(row["name"], row["runs"], "yes" if row["installed"] else "no",
                      row["about"])
    console.print(table)


def _auto_choice(model, precision, batch_size, cpu_threads, refresh, as_json) -> None:
    """The engine --engine auto picks for ``model``, with every candidate's figures."""
    from ppinfer.config import RunConfig
    from ppinfer.engines.auto import choose_engine
    from ppinfer.modelfiles.formats import RUN_PREFERENCE
    from ppinfer.modelfiles.source import resolve_source

    source = resolve_source(model=model, prefer=RUN_PREFERENCE)
    config = RunConfig(device="cpu", precision=precision, batch_size=batch_size,
                       cpu_threads=cpu_threads)
    choice = choose_engine(source, config, refresh=refresh)
    if as_json:
        click.echo(json.dumps({**choice.to_json_dict(), "quantized": choice.quantized,
                               "cached": choice.cached,
                               "path": str(choice.path) if choice.path else None,
                               "not_cached": choice.not_cached}))
        return
    if choice.quantized:  # taken from the card, nothing measured
        click.echo(choice.describe())
        return
    from rich.table import Column, Table

    from ppinfer.pipeline.output import console as Console  # noqa: N812

    table = Table(Column("engine", no_wrap=True), "img/s", "ms/batch", "rounds' ms",
                  "build s", "max |Δ| vs analysis", "status",
                  title=f"{source.display_name}: {choice.precision}, batch {batch_size}, "
                        f"{choice.cpu_threads} threads")
    for c in choice.candidates:
        if c.status == "skipped":
            continue
        mark = " ←" if c.label == choice.label else ""
        spread = (f"{min(c.round_ms):.1f}–{max(c.round_ms):.1f}" if c.round_ms else "-")
        table.add_row(c.label + mark, _fig(c.images_per_s, ".1f"), _fig(c.ms_per_batch, ".1f"),
                      spread, _fig(c.build_s, ".2f"), _fig(c.max_abs_diff, ".1e"), c.status)
    Console().print(table)
    for c in choice.candidates:
        if c.status != "ok":
            click.echo(f"{c.status}: {c.label}: {c.reason}")
    click.echo(choice.describe())


def _fig(value, fmt: str) -> str:
    return "-" if value is None else f"{value:{fmt}}"
