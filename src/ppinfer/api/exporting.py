"""``ppinfer.export()``: a checkpoint -> an inference model directory, checked against the
training program. ``ppinfer export`` calls this too."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ppinfer.api.options import parse_image_shape


class ExportNote(UserWarning):
    """What an export says of its own choices: an argument it assumed, the part of a
    distillation checkpoint it exported. Also in ``ExportResult.notes``."""


def export(
    model_name: str | None,
    checkpoint: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    class_num: int | None = None,
    format: str | None = None,  # noqa: A002 (the CLI's --format)
    labels: str | os.PathLike | None = None,
    force: bool = False,
    image_shape: Any = None,
    validate: bool = True,
    config: str | os.PathLike | None = None,
    arch_args: dict[str, Any] | None = None,
    checkpoint_part: str | None = None,
    warn: bool = True,
):
    """Export ``model_name`` with ``checkpoint``'s weights to ``output``.

    ``config``: the training config (PaddleClas's or PaddleX's YAML, or a PaddleX training
    output folder holding ``config.yaml``): the architecture is built from its ``Arch``
    (``model_name`` may then be None), the input from ``Global.image_shape`` and the
    preprocessing from ``Infer.transforms``. A PaddleX output folder given as ``checkpoint``
    brings its config along. ``arch_args``: PaddleClas constructor arguments
    (``{"dropout_prob": 0.0}``), over the config's. ``checkpoint_part``: the model of a
    distillation checkpoint to export (default: ``Student``).

    ``checkpoint`` may be ``None`` for EfficientNet_lite0 (the installed weights are used) or
    with a PaddleX output folder as ``config``. ``format``: ``"pir"`` (``inference.json``),
    ``"legacy"`` (``inference.pdmodel``) or ``"paddleclas1"`` (PaddleClas 1.x ``model`` +
    ``params``; also accepted as ``"seed"``); default: what the installed Paddle writes. Returns
    an :class:`ppinfer.export.ExportResult`: ``.output``, ``.files`` (the names written),
    ``.max_abs_diff`` (the self-check's largest score difference, ``None`` with
    ``validate=False``) and ``.notes`` (each also issued as an :class:`ExportNote` warning
    unless ``warn=False``).
    """
    from ppinfer.export import export_model

    if checkpoint is None and config is not None and Path(config).is_dir():
        checkpoint = config  # a PaddleX training output folder: its best_model
    found = None
    if config is None and checkpoint is not None:
        from ppinfer.checkpoints.training_outputs import output_config

        config = found = output_config(Path(checkpoint))
    if checkpoint is None:
        from ppinfer.default_model import default_checkpoint

        if model_name is None:
            from ppinfer.errors import ConfigError

            raise ConfigError("Pass the checkpoint with -p/--params, and the architecture with "
                              "-m/--model-name or the training config with -c/--config.")
        checkpoint = default_checkpoint(model_name)
    result = export_model(
        model_name, checkpoint, output, input_shape=parse_image_shape(image_shape),
        fmt=format, labels_file=None if labels is None else os.fspath(labels), force=force,
        validate=validate, class_num=class_num, config=config, arch_args=arch_args,
        checkpoint_part=checkpoint_part,
    )
    if found is not None:
        result.notes.insert(0, f"built the architecture as {found}, the training config beside "
                               "the checkpoint, says (PaddleX's training output).")
    if warn:
        for note in result.notes:
            warnings.warn(note, ExportNote, stacklevel=2)
    return result
