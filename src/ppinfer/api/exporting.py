"""``ppinfer.export()``: a checkpoint -> an inference model directory, checked against the
training program. ``ppinfer export`` calls this too."""

from __future__ import annotations

import os
from typing import Any

from ppinfer.api.options import parse_image_shape
from ppinfer.errors import ConfigError


def export(
    model_name: str | None,
    checkpoint: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    config: str | os.PathLike | None = None,
    class_num: int | None = None,
    format: str | None = None,  # noqa: A002 (the CLI's --format)
    labels: str | os.PathLike | None = None,
    force: bool = False,
    image_shape: Any = None,
    validate: bool = True,
):
    """Export ``model_name`` with ``checkpoint``'s weights to ``output``.

    ``checkpoint`` may be ``None`` for EfficientNet_lite0 (the installed weights are used).
    ``format``: ``"pir"`` (``inference.json``), ``"legacy"`` (``inference.pdmodel``) or
    ``"paddleclas1"`` (PaddleClas 1.x ``model`` + ``params``; also accepted as ``"seed"``);
    default: what the installed Paddle writes. Returns an
    :class:`ppinfer.export.ExportResult`: ``.output``, ``.files`` (the names written) and
    ``.max_abs_diff`` (the self-check's largest score difference, ``None`` with
    ``validate=False``). ``config``: the training config (``-c``) the architecture's arguments,
    input shape and preprocessing come from (``model_name`` may then be ``None``);
    ``.note`` names a score-changing argument assumed without one.
    """
    from ppinfer.export import export_model

    if checkpoint is None:
        from ppinfer.api.builtin_model import default_checkpoint

        if model_name is None:
            raise ConfigError("Pass the checkpoint (-p) to export from a training config.")
        checkpoint = default_checkpoint(model_name)
    extra = {} if class_num is None else {"class_num": class_num}
    return export_model(
        model_name, checkpoint, output, input_shape=parse_image_shape(image_shape),
        fmt=format, labels_file=None if labels is None else os.fspath(labels), force=force,
        validate=validate, config=None if config is None else os.fspath(config), **extra,
    )
