"""PaddleClas's own model code as the reference: the ``paddleclas`` wheel from the package registry.

The wheel is fetched once with ``pip download --no-deps`` into a cache directory and unpacked. Its
``ppcls/arch/backbone/legendary_models/*.py`` files are imported with Paddle alone: ``ppcls``'s
package ``__init__`` chain (which pulls in the whole training stack) is bypassed by registering
the parent packages as empty packages over their real directories, so only the model file and
its few ppcls-internal imports (logger, TheseusLayer, custom layers) run.

- ``PPINFER_TEST_PADDLECLAS``: an unpacked wheel (a directory holding ``paddleclas/ppcls``) to
  use instead of downloading;
- ``PPINFER_TEST_CACHE``: where to download and unpack (default ``tests/.cache``);
- ``PPINFER_TEST_REQUIRE_PADDLECLAS=1`` (set by ``.ci/run``): fail instead of skipping when the
  registry cannot be reached.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

PADDLECLAS_VERSION = "2.6.0"
_PARENTS = (
    "ppcls",
    "ppcls.arch",
    "ppcls.arch.backbone",
    "ppcls.arch.backbone.base",
    "ppcls.arch.backbone.legendary_models",
    "ppcls.utils",
)


class ReferenceUnavailable(RuntimeError):
    """The wheel could not be fetched (no registry); the reason says why."""


def _cache_dir() -> Path:
    default = Path(__file__).parent / ".cache"
    return Path(os.environ.get("PPINFER_TEST_CACHE", default))


def fetch_paddleclas() -> Path:
    """The unpacked ``paddleclas`` wheel's root (holding ``paddleclas/ppcls``), fetched once."""
    given = os.environ.get("PPINFER_TEST_PADDLECLAS")
    if given:
        return Path(given)
    root = _cache_dir() / f"paddleclas-{PADDLECLAS_VERSION}"
    if (root / "paddleclas" / "ppcls").is_dir():
        return root
    download = _cache_dir() / "wheels"
    download.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", str(download), f"paddleclas=={PADDLECLAS_VERSION}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise ReferenceUnavailable("pip download paddleclas timed out") from None
    wheels = sorted(download.glob(f"paddleclas-{PADDLECLAS_VERSION}-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReferenceUnavailable(f"pip download paddleclas=={PADDLECLAS_VERSION} failed: {last}")
    partial = root.with_name(root.name + ".partial")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(partial)
    partial.rename(root)  # atomic: a half-unpacked wheel is never taken for a whole one
    return root


def import_legendary(root: Path, module: str) -> types.ModuleType:
    """``ppcls.arch.backbone.legendary_models.<module>`` from the unpacked wheel at ``root``."""
    ppcls = root / "paddleclas" / "ppcls"
    for name in _PARENTS:
        if name in sys.modules:
            continue
        package = types.ModuleType(name)
        package.__path__ = [str(ppcls.joinpath(*name.split(".")[1:]))]
        sys.modules[name] = package
    if "ppcls.utils.save_load" not in sys.modules:
        # The model files import the pretrained-weights downloader (requests, tqdm); these tests
        # build with pretrained=False, which never calls it.
        save_load = types.ModuleType("ppcls.utils.save_load")

        def load_dygraph_pretrain(*args, **kwargs):
            raise RuntimeError("the reference tests never load PaddleClas's pretrained weights")

        save_load.load_dygraph_pretrain = load_dygraph_pretrain
        sys.modules["ppcls.utils.save_load"] = save_load
    logger = importlib.import_module("ppcls.utils.logger")
    if logger._logger is None:  # as PaddleClas's own entry points do before building a model
        logger.init_logger()
    return importlib.import_module(f"ppcls.arch.backbone.legendary_models.{module}")
