"""``ppinfer export``."""

from __future__ import annotations

import click

from ppinfer.cli.main import cli
from ppinfer.cli.options import parse_shape


def parse_arch_args(_ctx, _param, values: tuple[str, ...]) -> dict | None:
    """``--arch-arg NAME=VALUE`` (repeatable), each VALUE read as YAML: 0.0, null, false,
    [2, [2, 1], [2, 1], [2, 1], [2, 1]], relu."""
    from ppinfer.safe_io import load_yaml

    parsed = {}
    for item in values:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE, such as dropout_prob=0.0")
        try:
            parsed[name] = load_yaml(text) if text.strip() else None
        except Exception:  # noqa: BLE001 (YamlRefused, yaml.YAMLError)
            raise click.BadParameter(f"{item!r}: {text!r} is not a YAML value such as 0.0, "
                                     "null, false or [2, [2, 1]]") from None
    return parsed or None


@cli.command()
@click.option("-m", "--model-name", default=None,
              help="Architecture (see `ppinfer models`); optional with -c, which names it.")
@click.option("-c", "--config", "config", default=None, type=click.Path(),
              help="The training config (PaddleClas/PaddleX YAML, or a PaddleX training output "
                   "folder): the architecture and its arguments from Arch, the input from "
                   "Global.image_shape, the preprocessing from Infer.transforms.")
@click.option("-p", "--params", "checkpoint", default=None, type=click.Path(),
              help="Checkpoint: persistable directory, .pdparams (or its prefix, such as "
                   "output/best_model), a training output folder, or a PyTorch file. "
                   "Default for EfficientNet_lite0: the installed ImageNet weights.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Output directory.")
@click.option("--class-num", type=click.IntRange(min=1), default=None,
              help="Classes (default: the config's Arch.class_num, else 1000).")
@click.option("--image-shape", callback=parse_shape, default=None,
              help="Input C,H,W (default: the config's Global.image_shape, else the "
                   "architecture's, 3,224,224).")
@click.option("--arch-arg", "arch_args", multiple=True, callback=parse_arch_args,
              metavar="NAME=VALUE",
              help="A PaddleClas constructor argument, such as dropout_prob=0.0 (repeatable; "
                   "over the config's).")
@click.option("--checkpoint-part", default=None, metavar="NAME",
              help="The model of a distillation checkpoint to export (default: Student).")
@click.option("--format", "fmt", type=click.Choice(("pir", "legacy", "paddleclas1", "seed")),
              default=None, metavar="[pir|legacy|paddleclas1]",
              help="inference.json (pir), inference.pdmodel (legacy), or PaddleClas 1.x's "
                   "model + params (paddleclas1; 'seed' is the same). Default: native to the "
                   "installed Paddle.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="Label file (one a line) to store in inference.yml.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--no-validate", is_flag=True, help="Skip the training-vs-exported score check.")
def export(model_name, config, checkpoint, output, class_num, image_shape, arch_args,
           checkpoint_part, fmt, labels_file, force, no_validate) -> None:
    """Build an architecture, load a checkpoint, save an inference model.

    \b
    ppinfer export -m EfficientNet_lite0 -o out/lite0   # the installed ImageNet weights
    ppinfer export -m ResNet50_vd -p ResNet50_vd_pretrained/ -o out/ResNet50_vd
    ppinfer export -m ResNet50_vd -p best.pdparams -o out/ --class-num 102 --format legacy
    ppinfer export -c PPLCNet_x1_0.yaml -p output/PPLCNet_x1_0/best_model -o out/textline
    ppinfer export -c output/ -o out/doc_ori           # a PaddleX training output folder
    """
    from ppinfer.api.exporting import export as export_api

    result = export_api(
        model_name, checkpoint, output, class_num=class_num, image_shape=image_shape,
        format=fmt, labels=labels_file, force=force, validate=not no_validate, config=config,
        arch_args=arch_args, checkpoint_part=checkpoint_part, warn=False,
    )
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    layout = "paddleclas1" if result.format == "seed" else result.format
    click.echo(f"Exported {result.model_name} ({result.class_num} classes, input "
               f"{'x'.join(map(str, result.input_shape))}, {layout}) to {result.output}: "
               f"{', '.join(result.files)} in {result.seconds:.1f}s.")
    if result.max_abs_diff is not None:
        click.echo(f"Check: exported model vs training program, max |score diff| = "
                   f"{result.max_abs_diff:.2e}.")
