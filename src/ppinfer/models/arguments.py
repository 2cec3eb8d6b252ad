"""The keyword arguments an architecture's PaddleClas constructor takes, and what ppinfer does
with each.

A state dict holds weights, not the arguments PaddleClas built the model with: a PP-LCNet
trained with ``dropout_prob: 0.0`` or ``stride_list: [2, [2, 1], ...]`` has the same keys and
shapes as one trained with the defaults, and scores differently. PaddleClas's
``tools/export_model.py -c CONFIG`` passes the config's ``Arch`` keys to the constructor; ppinfer
does the same, so every family lists its constructor's keywords as :class:`Param` rows:

- ``BUILT``: ppinfer builds every value PaddleClas accepts;
- ``DEFAULT_ONLY``: changes the model, and ppinfer builds only PaddleClas's default (another
  value is refused by name: exporting it would be silently wrong);
- ``NO_EFFECT``: changes nothing an export holds (``pretrained``, ``lr_mult_list``, or
  ``return_patterns``, whose extra outputs PaddleClas's export drops): accepted and recorded;
- ``BY_NAME``: the registered name sets it (``scale`` of ``PPLCNet_x1_0``); PaddleClas's own
  factory refuses it too ("got multiple values").

``unseen`` marks the arguments that change the scores although the checkpoint cannot show
them (same keys, same shapes): an export that assumes one says so.

Nothing here imports Paddle: the CLI checks arguments before Paddle loads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ppinfer.errors import ConfigError

BUILT, DEFAULT_ONLY, NO_EFFECT, BY_NAME = "built", "default-only", "no-effect", "by-name"
MAX_CHANNELS = 1 << 16
MAX_STRIDE = 64


@dataclass(frozen=True)
class Param:
    """One keyword argument of a family's PaddleClas constructor."""

    name: str
    default: Any
    kind: str = BUILT
    # value -> the value normalised to plain YAML types; ValueError("must be ...") otherwise
    check: Callable[[Any], Any] | None = None
    unseen: bool = False  # changes the scores; the checkpoint cannot show it


@dataclass(frozen=True)
class ArchArguments:
    """The arguments one export builds with: every declared one, with where its value came
    from (``given``: the config or ``--arch-arg``; the others are PaddleClas's defaults)."""

    values: dict[str, Any] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)  # name -> where it was set
    params: tuple[Param, ...] = ()
    # From a training config, an argument it leaves out had PaddleClas's default in training
    # too: known, not assumed.
    defaults_known: bool = False

    @property
    def built(self) -> dict[str, Any]:
        """What the factory takes: the ``BUILT`` arguments."""
        return {p.name: self.values[p.name] for p in self.params if p.kind == BUILT}

    @property
    def assumed_unseen(self) -> list[Param]:
        """Arguments that change the scores, the checkpoint cannot show, and nobody gave."""
        if self.defaults_known:
            return []
        return [p for p in self.params if p.unseen and p.name not in self.given]

    def record(self) -> dict[str, Any]:
        """For ``inference.yml``: the forward's arguments, and which of them were assumed."""
        shown = [p for p in self.params if p.kind in (BUILT, DEFAULT_ONLY)]
        assumed = [] if self.defaults_known else [p.name for p in shown
                                                  if p.name not in self.given]
        return {"arguments": {p.name: self.values[p.name] for p in shown},
                "assumed": sorted(assumed)}


# -- checks: each returns the value in plain YAML types, or raises ValueError("...") ---------------

def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def probability(value: Any) -> float:
    """A dropout probability: a number from 0 to 1 (``paddle.nn.Dropout``'s range)."""
    ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value)
    if not ok or not 0 <= value <= 1:
        raise ValueError("a number from 0 to 1")
    return float(value)


def probability_or_null(value: Any) -> float | None:
    """A dropout probability, or null for no dropout layer (MobileNetV3 has that)."""
    if value is None:
        return None
    try:
        return probability(value)
    except ValueError:
        raise ValueError("a number from 0 to 1, or null for no dropout") from None


def channels(value: Any) -> int:
    if not _is_int(value) or not 1 <= value <= MAX_CHANNELS:
        raise ValueError(f"a whole number of channels from 1 to {MAX_CHANNELS}")
    return int(value)


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("one of " + ", ".join(choices))
        return str(value)

    return check


def strides(count: int) -> Callable[[Any], list]:
    """``count`` strides, each a whole number or a [height, width] pair (PULC's [2, 1])."""

    def single(value: Any) -> bool:
        return _is_int(value) and 1 <= value <= MAX_STRIDE

    def check(value: Any) -> list:
        if isinstance(value, (list, tuple)) and len(value) == count:
            out: list = []
            for item in value:
                if single(item):
                    out.append(int(item))
                elif (isinstance(item, (list, tuple)) and len(item) == 2
                      and all(single(v) for v in item)):
                    out.append([int(v) for v in item])
                else:
                    break
            else:
                return out
        raise ValueError(f"a list of {count} strides, each a whole number from 1 to "
                         f"{MAX_STRIDE} or a [height, width] pair")

    return check


# -- rows every PaddleClas family shares -----------------------------------------------------------

def no_effect(name: str, default: Any = None) -> Param:
    return Param(name, default, NO_EFFECT)


def by_name(name: str, value: Any) -> Param:
    return Param(name, value, BY_NAME)


def default_only(name: str, default: Any, *, unseen: bool = False) -> Param:
    return Param(name, default, DEFAULT_ONLY, unseen=unseen)


# ``pretrained`` and ``use_ssld`` choose the weights training starts from; ``lr_mult_list``
# and ``freeze_befor`` (sic) the learning rates; ``return_patterns``/``return_stages`` add
# feature outputs that PaddleClas's ExportModel drops (it keeps ``logits``).
TRAINING = (no_effect("pretrained", False), no_effect("use_ssld", False),
            no_effect("lr_mult_list"), no_effect("freeze_befor"))
FEATURE_OUTPUTS = (no_effect("return_patterns"), no_effect("return_stages"))


# -- resolving -------------------------------------------------------------------------------------

def show(value: Any) -> str:
    """A value as YAML writes it: null, true, [2, [2, 1]], 'hardswish'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def resolve(model_name: str, params: tuple[Param, ...], given: Mapping[str, Any],
            where: Mapping[str, str], defaults_known: bool = False) -> ArchArguments:
    """``given`` checked against what ``model_name`` takes; the rest take PaddleClas's
    defaults (known ones when ``given`` is a training config's whole Arch). ``where[name]``
    says where each given value was written, for messages.

    Raises :class:`ConfigError` naming the first argument that is unknown, set by the name,
    of a value PaddleClas would refuse, or of a value ppinfer does not build.
    """
    declared = {p.name: p for p in params}
    unknown = [name for name in given if name not in declared]
    if unknown:
        takes = ", ".join(sorted(p.name for p in params if p.kind != BY_NAME))
        raise ConfigError(
            f"{where[unknown[0]]} sets {', '.join(unknown)}, which ppinfer's {model_name} does "
            f"not know (it takes class_num, {takes}): remove it, or export with PaddleClas's "
            "tools/export_model.py."
        )
    values = {p.name: p.default for p in params}
    for name, value in given.items():
        values[name] = _checked(model_name, declared[name], value, where[name])
    return ArchArguments(values, {name: where[name] for name in given}, params, defaults_known)


def _checked(model_name: str, param: Param, value: Any, where: str) -> Any:
    if param.kind == BY_NAME:
        value_set = "" if param.default is None else f" to {show(param.default)}"
        raise ConfigError(f"{where} sets {param.name}, which the name {model_name} already "
                          f"sets{value_set} (PaddleClas refuses it too): remove it, or name the "
                          "architecture that has the value you want.")
    if param.kind == NO_EFFECT:
        return value
    if param.check is not None:
        try:
            value = param.check(value)
        except ValueError as exc:
            raise ConfigError(f"{where} sets {param.name} to {show(value)}; {model_name}'s "
                              f"{param.name} must be {exc}.") from None
    if param.kind == DEFAULT_ONLY and value != param.default:
        raise ConfigError(
            f"{where} sets {param.name} to {show(value)}, and ppinfer builds {model_name} only "
            f"with {param.name} {show(param.default)} (PaddleClas's default): the export would "
            "not score like the trained model, so it is refused; export with PaddleClas's "
            "tools/export_model.py."
        )
    return value


def assumed_note(model_name: str, assumed: list[Param]) -> str:
    """One line: which unseen arguments were assumed, and how to pass the real ones."""
    listed = ", ".join(f"{p.name} {show(p.default)}" for p in assumed)
    return (f"Assumed PaddleClas's defaults for what the checkpoint cannot show ({listed}); if "
            f"{model_name} was trained with others, pass its training config (-c CONFIG.yaml) "
            f"or the values (--arch-arg {assumed[0].name}=VALUE).")
