"""``ppinfer.export()``: a checkpoint -> an inference model directory, checked against the
training program. ``ppinfer export`` calls this too."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from ppinfer.api.options import parse_arch_args, parse_image_shape
from ppinfer.errors import ConfigError


class ExportNote(UserWarning):
    """What an export says of its own choices: an argument it assumed that the checkpoint cannot
    show, the part of a distillation checkpoint it exported. Also in ``ExportResult.notes``."""


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
    config: str | os.PathLike | Literal[False] | None = None,
    arch_args: dict[str, Any] | list[str] | None = None,
    checkpoint_part: str | None = None,
    notify: Callable[[str], None] | None = None,
):
    """Export ``model_name`` with ``checkpoint``'s weights to ``output``.

    ``config``: the PaddleClas/PaddleX training config (``CONFIG.yaml``, or a PaddleX training
    output folder holding ``config.yaml``): the architecture (``model_name`` may then be
    ``None``), its arguments, class count, input shape and preprocessing come from it, as
    PaddleClas's ``tools/export_model.py -c`` builds them. Without it, the ``config.yaml`` that
    PaddleX or PaddleClas training left in ``checkpoint``'s output folder is used, and a note
    says so (docs/export.md); ``config=False`` uses none (``--no-config``). ``arch_args``:
    PaddleClas constructor arguments (``{"dropout_prob": 0.0}`` or ``["dropout_prob=0.0"]``),
    over the config's. ``checkpoint_part``: a distillation checkpoint's part (default
    ``"Student"``).

    ``checkpoint`` may be ``None`` for EfficientNet_lite0 (the installed weights are used) or
    with a PaddleX output folder as ``config`` (its ``best_model``). ``format``: ``"pir"``
    (``inference.json``), ``"legacy"`` (``inference.pdmodel``) or ``"paddleclas1"`` (PaddleClas
    1.x ``model`` + ``params``; also accepted as ``"seed"``); default: what the installed Paddle
    writes. Returns an :class:`ppinfer.export.ExportResult`: ``.output``, ``.files`` (the names
    written), ``.max_abs_diff`` (the self-check's largest score difference, ``None`` with
    ``validate=False``) and ``.notes`` (what was assumed: each is also given to ``notify``,
    by default issued as an :class:`ExportNote` warning).
    """
    from ppinfer.export import export_model

    if checkpoint is None:
        checkpoint = _default_checkpoint(model_name, config)
    if isinstance(arch_args, (list, tuple)):
        arch_args = parse_arch_args(arch_args)
    return export_model(
        model_name, checkpoint, output, input_shape=parse_image_shape(image_shape),
        fmt=format, labels_file=None if labels is None else os.fspath(labels), force=force,
        validate=validate, class_num=class_num, config=config, arch_args=arch_args,
        checkpoint_part=checkpoint_part, notify=notify or _warn,
    )


def _default_checkpoint(model_name: str | None, config) -> Path:
    """A PaddleX output folder given as the config holds its checkpoint too; the built-in
    model has its installed weights; others need ``-p``."""
    if config is not None and Path(config).is_dir():
        return Path(config)
    if config is not None:
        raise ConfigError("Pass the checkpoint the config trained with -p/--params.")
    from ppinfer.api.builtin_model import default_checkpoint

    if model_name is None:
        raise ConfigError("Name the architecture: pass -m/--model-name, or the training config "
                          "with -c/--config.")
    return default_checkpoint(model_name)


def _warn(note: str) -> None:
    warnings.warn(note, ExportNote, stacklevel=5)  # the caller of ppinfer.export(...)
