"""The run options of the Python API, by their command-line names with underscores.

``ppinfer.load(..., batch_size=8, precision="bf16")`` means what ``ppinfer predict -b 8
--precision bf16`` means: both go through :func:`run_config`, then :class:`ppinfer.config.RunConfig`
checks the values against the installed Paddle and this machine.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ppinfer.config import RunConfig
from ppinfer.errors import ConfigError


def _kind(annotation: str) -> str:
    """The kind of value a RunConfig field takes, from its annotation (``"int | None"``)."""
    for kind in ("bool", "int", "float", "str"):
        if re.search(rf"\b{kind}\b", annotation):
            return kind
    return "any"


# option -> the kind of value it takes (checked before RunConfig sees it): every RunConfig
# field, plus the command line's spelling of ``device``
RUN_OPTIONS: dict[str, str] = {
    "use_gpu": "bool", "gpu_id": "int",
    **{f.name: _kind(str(f.type)) for f in fields(RunConfig)
       if f.name not in ("resolved", "precision_given")},
    "trt_cache_dir": "path",
}
# options that say which model to run and how to read images
MODEL_OPTIONS: dict[str, str] = {
    "model_file": "path", "params_file": "path", "model_dir": "path", "model_name": "str",
    "class_num": "int", "image_shape": "shape", "labels": "path", "max_pixels": "int",
    "max_image_bytes": "int",
}
_KINDS = {"int": "a whole number", "bool": "True or False", "str": "a string",
          "float": "a number", "path": "a path", "shape": "(C, H, W) or 'C,H,W'"}


def check_options(options: Mapping[str, Any], known: Mapping[str, str], where: str) -> None:
    """Raise :class:`ConfigError` for an unknown option or a value of the wrong kind."""
    for name, value in options.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{where} has no option {name!r}.{hint} Options: "
                              f"{', '.join(sorted(known))}.")
        if value is not None and not _is_kind(value, known[name]):
            raise ConfigError(f"{where}: {name} must be {_KINDS[known[name]]}, "
                              f"not {type(value).__name__} {value!r}.")


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "any":
        return True
    if kind == "path":
        return isinstance(value, (str, os.PathLike))
    return isinstance(value, (str, tuple, list))  # shape: parsed by parse_image_shape


def parse_image_shape(value: str | tuple | list | None) -> tuple[int, int, int] | None:
    """``"3,224,224"``, ``"3x224x224"`` or ``(3, 224, 224)`` -> ``(3, 224, 224)``."""
    if value is None:
        return None
    parts = value.replace("x", ",").split(",") if isinstance(value, str) else list(value)
    try:
        shape = tuple(int(v) for v in parts)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"image_shape {value!r} is not C,H,W such as 3,224,224.")
    return shape  # type: ignore[return-value]


def parse_arch_args(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["dropout_prob=0.0", "stride_list=[2, [2, 1], [2, 1], [2, 1], [2, 1]]"]`` -> a dict:
    each ``NAME=VALUE`` with the value read as YAML, the way a config's ``Arch`` writes it
    (``null``, ``false``, numbers, lists, words)."""
    from ppinfer.io.safe_io import load_yaml, short

    parsed: dict[str, Any] = {}
    for item in items:
        name, sep, text = str(item).partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ConfigError(f"--arch-arg {short(item, 60)} is not NAME=VALUE, such as "
                              "dropout_prob=0.0.")
        try:
            value = load_yaml(text)
        except Exception as exc:  # YamlRefused, or yaml.YAMLError: not YAML
            reason = short(getattr(exc, "problem", None) or exc, 80)
            raise ConfigError(f"--arch-arg {name}: {short(text, 60)} is not a YAML value "
                              f"({reason}).") from None
        if isinstance(value, dict):
            raise ConfigError(f"--arch-arg {name}: give a value (a number, word, true/false, "
                              "null or a list), not a mapping.")
        parsed[name] = value
    return parsed


def run_config(**options: Any) -> RunConfig:
    """A resolved :class:`RunConfig` from run options by their CLI names (unset = default).

    ``use_gpu`` / ``gpu_id`` are the command line's spelling of ``device``: pass one or the
    other.
    """
    check_options(options, RUN_OPTIONS, "The run configuration")
    given = {k: v for k, v in options.items() if v is not None}
    use_gpu = given.pop("use_gpu", None)
    gpu_id = given.pop("gpu_id", 0)
    if use_gpu is not None:
        if "device" in given:
            raise ConfigError("Pass either device or use_gpu, not both.")
        given["device"] = f"gpu:{gpu_id}" if use_gpu else "cpu"
    if given.get("trt_cache_dir") is not None:
        given["trt_cache_dir"] = os.fspath(given["trt_cache_dir"])
    return RunConfig(**given).resolve()
