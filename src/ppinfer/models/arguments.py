"""The PaddleClas constructor arguments an architecture takes, and what each does to an export.

A state dict does not record the arguments PaddleClas built its model with (``dropout_prob``,
``stride_list``, ...): the training config does (``Arch:`` in PaddleClas's YAML). So each family
declares the keyword arguments its PaddleClas constructor takes, with PaddleClas's default and
one of four kinds:

- ``forward``: changes the exported model, and ppinfer builds every value PaddleClas accepts;
- ``default-only``: changes the model, and ppinfer builds PaddleClas's default only (any other
  value is refused by name rather than exported wrong);
- ``training``: affects training only (``pretrained``, ``lr_mult_list``): accepted, recorded,
  no effect on the export;
- ``fixed``: the registered name fixes it (``scale`` of ``PPLCNet_x1_0``; PaddleClas's own
  factory refuses it too, passing it twice).

``hidden`` marks the arguments a checkpoint cannot tell (same keys and shapes) although they
change the scores: an export that assumes them says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ppinfer.errors import ConfigError

FORWARD, DEFAULT_ONLY, TRAINING, FIXED = "forward", "default-only", "training", "fixed"
KINDS = (FORWARD, DEFAULT_ONLY, TRAINING, FIXED)
MAX_CHANNELS = 1 << 16
MAX_STRIDE = 16


@dataclass(frozen=True)
class Argument:
    """One keyword argument of a family's PaddleClas constructor."""

    name: str
    default: Any
    kind: str = FORWARD
    # value -> normalised value (plain YAML types); raises ValueError with the reason
    check: Callable[[Any], Any] | None = None
    hidden: bool = False  # the checkpoint cannot tell it, and it changes the scores

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"argument kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Arguments:
    """Every argument of one build: its value, and which were given rather than assumed."""

    values: dict[str, Any]
    given: frozenset[str]
    forward: dict[str, Any]  # what the factory takes: the ``forward`` arguments

    def assumed_hidden(self, declared: tuple[Argument, ...]) -> list[Argument]:
        """The arguments the checkpoint cannot tell that were assumed, not given."""
        return [a for a in declared if a.hidden and a.name not in self.given]


# -- checks: each returns the value normalised to plain YAML types, or raises ValueError ----------

def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def probability(value: Any) -> float:
    """A dropout probability, as ``paddle.nn.Dropout`` takes it: a number from 0 to 1."""
    if not is_number(value) or not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError("a number from 0 to 1")
    return float(value)


def probability_or_none(value: Any) -> float | None:
    """A dropout probability, or None for no dropout layer at all."""
    if value is None:
        return None
    try:
        return probability(value)
    except ValueError:
        raise ValueError("a number from 0 to 1, or null for no dropout") from None


def channels(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CHANNELS:
        raise ValueError(f"a whole number of channels from 1 to {MAX_CHANNELS}")
    return int(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return str(value)

    return check


def _stride(value: Any) -> int | list[int]:
    def single(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_STRIDE

    if single(value):
        return int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(single(v) for v in value):
        return [int(v) for v in value]
    raise ValueError("bad stride")


def stride_list(length: int) -> Callable[[Any], list]:
    """``length`` strides, each a whole number or a [height, width] pair (PULC's [2, 1])."""

    def check(value: Any) -> list:
        try:
            if not isinstance(value, (list, tuple)) or len(value) != length:
                raise ValueError("bad length")
            return [_stride(v) for v in value]
        except ValueError:
            raise ValueError(f"a list of {length} strides, each a whole number from 1 to "
                             f"{MAX_STRIDE} or a [height, width] pair") from None

    return check


def fixed(name: str, value: Any) -> Argument:
    return Argument(name, value, FIXED)


def training(name: str, default: Any = None) -> Argument:
    return Argument(name, default, TRAINING)


def default_only(name: str, default: Any, *, hidden: bool = False) -> Argument:
    return Argument(name, default, DEFAULT_ONLY, hidden=hidden)


# PaddleClas's factories take these on every legendary model (``pretrained`` and ``use_ssld``
# pick the weights to start training from); most constructors also take ``lr_mult_list``.
TRAINING_ONLY = (training("pretrained", False), training("use_ssld", False),
                 training("lr_mult_list"))
# TheseusLayer's (ppcls/arch/backbone/base/theseus_layer.py): feature outputs for other tasks.
# A classifier export needs the logits, so only their defaults are built.
THESEUS_OUTPUTS = (default_only("return_patterns", None), default_only("return_stages", None))


# -- resolving -------------------------------------------------------------------------------------

def show(value: Any) -> str:
    """A value as YAML spells it (null, true, [2, [2, 1]])."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def resolve(model_name: str, declared: tuple[Argument, ...], given: Mapping[str, Any],
            where: str | Mapping[str, str]) -> Arguments:
    """``given`` (from ``where``: a config's ``Arch``, ``--arch-arg``; or a mapping of each
    name to where it came from) checked against the arguments ``model_name`` takes; the rest
    take PaddleClas's defaults.

    Raises :class:`ConfigError` naming the first argument that is unknown, fixed by the name,
    of a wrong value, or of a value ppinfer does not build.
    """
    def source(name: str) -> str:
        return where if isinstance(where, str) else where.get(name, "--arch-arg")

    by_name = {a.name: a for a in declared}
    unknown = [name for name in given if name not in by_name]
    if unknown:
        takes = ", ".join(sorted(a.name for a in declared if a.kind != FIXED)) or "none"
        raise ConfigError(
            f"{source(unknown[0])} sets {', '.join(map(str, unknown))}, which ppinfer's "
            f"{model_name} does not take (it takes {takes}): remove it, or export with "
            "PaddleClas's own tools/export_model.py."
        )
    values = {a.name: a.default for a in declared}
    for name, value in given.items():
        values[name] = _checked(model_name, by_name[name], value, source(name))
    forward = {a.name: values[a.name] for a in declared if a.kind == FORWARD}
    return Arguments(values, frozenset(given), forward)


def _checked(model_name: str, argument: Argument, value: Any, where: str) -> Any:
    name = argument.name
    if argument.kind == FIXED:
        raise ConfigError(
            f"{where} sets {name}, which the name {model_name} fixes at "
            f"{show(argument.default)} (PaddleClas's {model_name} refuses it too): remove it."
        )
    if argument.kind == TRAINING:
        return value
    if argument.check is not None:
        try:
            value = argument.check(value)
        except ValueError as exc:
            raise ConfigError(f"{where} sets {name}: {show(value)}, and {model_name}'s {name} "
                              f"must be {exc}.") from None
    if argument.kind == DEFAULT_ONLY and value != argument.default:
        raise ConfigError(
            f"{where} sets {name}: {show(value)}, and ppinfer builds {model_name} only with "
            f"PaddleClas's default {name}: {show(argument.default)}, so the export would "
            "differ from the trained model: export it with PaddleClas's own "
            "tools/export_model.py."
        )
    return value


def assumed_sentence(model_name: str, assumed: list[Argument]) -> str:
    """One line: which hidden arguments were assumed, and how to pass the real ones."""
    listed = ", ".join(f"{a.name}: {show(a.default)}" for a in assumed)
    example = assumed[0]
    return (
        f"assumed PaddleClas's defaults for {model_name}'s {listed}, which the checkpoint cannot "
        "tell and which change the scores: if it was trained with others, pass its training "
        f"config (-c CONFIG.yaml) or the values (--arch-arg {example.name}=VALUE)."
    )
