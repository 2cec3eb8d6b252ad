"""``ppinfer models`` and ``ppinfer info``."""

from __future__ import annotations

import json
import sys

import click

from ppinfer import __version__
from ppinfer.cli.main import cli


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
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def info(as_json: bool) -> None:
    """Show the installed Paddle (version, IR, CUDA / TensorRT / oneDNN) and this machine.

    \b
    ppinfer info
    ppinfer info --json
    """
    from ppinfer.paddle_env import paddle_env
    from ppinfer.pipeline.opencv import describe_opencv

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
    }
    if as_json:
        click.echo(json.dumps(facts))
        return
    width = max(map(len, facts))
    for key, value in facts.items():
        if isinstance(value, list):
            value = " ".join(value) or "none"
        click.echo(f"{key:<{width}}  {value}")


@cli.command("engines")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per engine.")
def engines_cmd(as_json: bool) -> None:
    """List the engines (built-in and plug-in) and the model layouts each can run.

    \b
    ppinfer engines
    """
    from ppinfer.engines import ENGINES, list_engines

    rows = []
    for name in list_engines():
        cls = ENGINES[name]
        runs = ("architecture + checkpoint (" + ", ".join(sorted(cls.layouts)) + ")"
                if cls.needs_architecture else ", ".join(sorted(cls.layouts)))
        rows.append({"name": name, "runs": runs, "about": cls.summary})
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    from rich.console import Console
    from rich.table import Column, Table

    table = Table(Column("engine", no_wrap=True), "runs", "about")
    for row in rows:
        table.add_row(row["name"], row["runs"], row["about"])
    Console().print(table)
