"""``ppinfer export``."""

from __future__ import annotations

import click

from ppinfer.cli.main import cli
from ppinfer.cli.options import parse_shape


@cli.command()
@click.option("-c", "--config", "config", default=None, type=click.Path(),
              help="The PaddleClas/PaddleX training config (or PaddleX's training output "
                   "folder): architecture, its arguments, classes, input shape and "
                   "preprocessing, as PaddleClas's export_model.py -c reads them. Default: "
                   "the config.yaml that training left in -p's output folder, if any.")
@click.option("--no-config", is_flag=True,
              help="Use no training config, not even one found beside -p: the architecture "
                   "from -m, its arguments from --arch-arg, else PaddleClas's defaults.")
@click.option("-m", "--model-name", default=None,
              help="Architecture (see `ppinfer models`); optional with -c.")
@click.option("-p", "--params", "checkpoint", default=None, type=click.Path(),
              help="Checkpoint: persistable directory, .pdparams/.pdema, a training output "
                   "(best_model prefix or folder), or a PyTorch file. Default for "
                   "EfficientNet_lite0: the installed ImageNet weights.")
@click.option("-o", "--output", required=True, type=click.Path(), help="Output directory.")
@click.option("--class-num", type=click.IntRange(min=1), default=None,
              help="Classes the checkpoint was trained for (default: the config's, else 1000).")
@click.option("--image-shape", callback=parse_shape, default=None,
              help="Input C,H,W (default: the config's, else the architecture's, 3,224,224).")
@click.option("--arch-arg", "arch_args", multiple=True, metavar="NAME=VALUE",
              help="A PaddleClas constructor argument (YAML value), over the config's: "
                   "dropout_prob=0.0, use_last_conv=false. Repeatable.")
@click.option("--checkpoint-part", default=None, metavar="NAME",
              help="Of a distillation checkpoint (Student.*, Teacher.* keys), the part to "
                   "export. Default: the config's infer_model_name, else Student.")
@click.option("--format", "fmt", type=click.Choice(("pir", "legacy", "paddleclas1", "seed")),
              default=None, metavar="[pir|legacy|paddleclas1]",
              help="inference.json (pir), inference.pdmodel (legacy), or PaddleClas 1.x's "
                   "model + params (paddleclas1; 'seed' is the same). Default: native to the "
                   "installed Paddle.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="Label file (one a line) to store in inference.yml.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--no-validate", is_flag=True, help="Skip the training-vs-exported score check.")
def export(config, no_config, model_name, checkpoint, output, class_num, image_shape, arch_args,
           checkpoint_part, fmt, labels_file, force, no_validate) -> None:
    """Build an architecture, load a checkpoint, save an inference model.

    \b
    ppinfer export -m EfficientNet_lite0 -o out/lite0   # installed weights
    ppinfer export -c PPLCNet_x1_0.yaml -p output/best_model -o out/pulc
    ppinfer export -c paddlex_output/ -o out/textline  # PaddleX output folder
    ppinfer export -p paddlex_output/best_model -o out/tl  # finds config.yaml
    ppinfer export -m ResNet50_vd -p ResNet50_vd_pretrained/ -o out/ResNet50_vd
    ppinfer export -m ResNet50_vd -p best.pdparams -o out/ --class-num 102
    """
    from ppinfer.api.exporting import export as export_api

    if config is not None and no_config:
        raise click.UsageError("Give -c/--config or --no-config, not both.")
    result = export_api(
        model_name, checkpoint, output, class_num=class_num, image_shape=image_shape,
        format=fmt, labels=labels_file, force=force, validate=not no_validate,
        config=False if no_config else config,
        arch_args=list(arch_args), checkpoint_part=checkpoint_part,
        notify=lambda note: click.echo(f"Note: {note}", err=True),
    )
    layout = "paddleclas1" if result.format == "seed" else result.format
    click.echo(f"Exported {result.model_name} ({result.class_num} classes, input "
               f"{'x'.join(map(str, result.input_shape))}, {layout}) to {result.output}: "
               f"{', '.join(result.files)} in {result.seconds:.1f}s.")
    if result.max_abs_diff is not None:
        click.echo(f"Check: exported model vs training program, max |score diff| = "
                   f"{result.max_abs_diff:.2e} (Executor), {result.engine_max_abs_diff:.2e} "
                   "(Paddle Inference's optimised kernels).")
