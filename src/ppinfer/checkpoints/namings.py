"""Which naming a checkpoint's keys use, detected from the keys, and their translation.

A static program knows its parameters by *variable names* (PaddleClas 1.x ``ParamAttr`` names
such as ``conv1_1_weights`` for the families that have them, generated names otherwise). The
files users have are keyed in other namings:

- variable names: persistable directories, ``paddle.static.save`` and 1.x ``.pdparams``;
- the model's own structured names (``Layer.state_dict()`` keys) -- ppinfer's own dygraph state
  dict, and PaddleClas 2.x files for the families ppinfer builds with PaddleClas's structure;
- a 2.0-era ``paddle.save(state_dict)``, whose ``StructuredToParameterName@@`` table maps every
  structured key to its variable name;
- a family's declared foreign namings (``ModelSpec.namings``): e.g. PaddleClas 2.x "legendary"
  structured names for a family ppinfer builds with 1.x names, written as key tables
  (checkpoints/keymap.py) next to the architecture.

A table holding only names Paddle generated (``conv2d_0.w_0``: what ``paddle.save`` writes for
PaddleClas 2.x models) is not a naming: it numbers parameters in creation order.

:func:`fit_naming` tries each and keeps the one that covers the program's variables; it never
matches by position.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ppinfer.checkpoints.matching import is_training_state, listing, match_state
from ppinfer.errors import CheckpointError

# Names Paddle generates for parameters without a ParamAttr name (conv2d_3.w_0, linear_0.b_0,
# generated_tensor_0). A StructuredToParameterName@@ table of nothing else (what paddle.save
# writes for PaddleClas 2.x's models) numbers the parameters in creation order: reading by it
# would be reading by position, so such a table is not a naming.
_GENERATED_NAME = re.compile(r"^(\w+_\d+\.[wb]_\d+|generated_tensor_\d+)$")


@dataclass(frozen=True)
class Naming:
    """A way checkpoints name parameters, and how its keys translate.

    ``rename(key)`` returns the model's structured key or variable name for a checkpoint key, or
    None when the key is not a parameter in this naming (it is then reported as unexpected).
    """

    label: str
    rename: Callable[[str], str | None]


class CheckpointState(dict):
    """``{key: array}`` read from a checkpoint, with what the file says of its own naming."""

    structured_names: Mapping[str, str] | None = None  # 2.0-era StructuredToParameterName@@


@dataclass
class _Reading:
    """``state`` read in one naming: renamed into variable names, with what it covers."""

    naming: Naming
    renamed: dict[str, np.ndarray]
    file_keys: dict[str, str]  # variable name -> the file's own key for it (for messages)
    unknown: list[str]  # the file's keys that land on none of the variables (training state aside)
    covered: int  # the program's variables present
    wrong_shape: list[str]  # present variables of another shape


def _read(
    state: Mapping[str, np.ndarray],
    naming: Naming,
    structured: Mapping[str, str],
    expected: dict[str, tuple[int, ...]],
) -> _Reading:
    """``state`` renamed into variable names; keys the naming does not know keep their own name
    (so match_state reports them as unexpected)."""
    renamed: dict[str, np.ndarray] = {}
    file_keys: dict[str, str] = {}
    unknown = []
    for key, value in state.items():
        name = naming.rename(key) or key
        name = structured.get(name, name)
        if name not in expected and not is_training_state(key):
            unknown.append(key)
        renamed[name] = value
        file_keys[name] = key
    present = [name for name in expected if name in renamed]
    wrong = [n for n in present if tuple(renamed[n].shape) != tuple(expected[n])]
    return _Reading(naming, renamed, file_keys, unknown, len(present), wrong)


def candidate_namings(
    state: Mapping[str, np.ndarray], structured: Mapping[str, str], family: tuple[Naming, ...]
) -> list[Naming]:
    """Namings to try for ``state``, most specific first."""
    namings = [Naming("variable names", lambda key: key)]
    table = getattr(state, "structured_names", None)
    if table and not all(_GENERATED_NAME.match(name) for name in table.values()):
        namings.append(Naming("the file's own StructuredToParameterName@@ table", table.get))
    namings.append(Naming("ppinfer's structured names", lambda key: key if key in structured
                          else None))
    namings.extend(family)
    return namings


def fit_naming(
    state: Mapping[str, np.ndarray],
    expected: dict[str, tuple[int, ...]],
    structured: Mapping[str, str],
    family: tuple[Naming, ...] = (),
    source: str = "the checkpoint",
    model_name: str = "the architecture",
) -> dict[str, np.ndarray]:
    """``state`` keyed by the program's variable names, in the naming that fits it.

    ``structured`` maps the model's structured keys to variable names. A naming that covers
    every variable is checked by :func:`match_state` (shapes, extra keys). When none does,
    raises :class:`CheckpointError` naming the namings tried and the closest one's first
    mismatches.
    """
    readings = []
    for naming in candidate_namings(state, structured, family):
        reading = _read(state, naming, structured, expected)
        if reading.covered == len(expected):
            return match_state(expected, reading.renamed, source=source, model_name=model_name,
                               file_keys=reading.file_keys)
        readings.append(reading)
    closest = max(readings, key=lambda r: (r.covered, -len(r.wrong_shape)))
    raise CheckpointError(
        _no_naming_fits(readings, closest, state, expected, source, model_name)
    )


def _no_naming_fits(
    readings: list[_Reading],
    closest: _Reading,
    state: Mapping[str, np.ndarray],
    expected: dict[str, tuple[int, ...]],
    source: str,
    model_name: str,
) -> str:
    tried = "; ".join(r.naming.label for r in readings)
    surplus, shortfall = _shape_differences(state, expected)
    if len(closest.wrong_shape) > 2 or surplus > 2:
        fix = "check --model-name matches the checkpoint"
    elif shortfall and not surplus:
        fix = (f"every parameter it holds has a shape {model_name} makes, but {shortfall} are "
               "missing: the file looks incomplete")
    elif shortfall:
        # A few parameters absent or of another shape, the rest fit: the head was built with
        # other constructor arguments (use_last_conv: false, class_expand, ...).
        fix = (f"the rest fits, so {model_name} was likely trained with other arguments than "
               "PaddleClas's defaults: pass its training config (-c CONFIG.yaml) or the "
               "arguments (--arch-arg NAME=VALUE)")
    else:
        fix = (f"its parameter shapes are {model_name}'s, so only its key naming is one ppinfer "
               "does not read: rename its keys into one of those namings")
    if closest.covered == 0:
        return (f"{source} names none of {model_name}'s {len(expected)} parameters in any "
                f"naming ppinfer knows ({tried}); its keys are {listing(sorted(state))}: {fix}.")
    missing = [name for name in expected if name not in closest.renamed]
    detail = f"lacks {len(missing)} of {len(expected)} variables ({listing(missing)})"
    if closest.unknown:
        detail += f" and has {len(closest.unknown)} keys it cannot place "
        detail += f"({listing(closest.unknown)})"
    if closest.wrong_shape:
        name = closest.wrong_shape[0]
        detail += (f", and {len(closest.wrong_shape)} of another shape "
                   f"({closest.file_keys.get(name, name)} is "
                   f"{list(closest.renamed[name].shape)}, {model_name} makes "
                   f"{list(expected[name])})")
    return (f"{source} fits none of the namings ppinfer knows for {model_name} ({tried}); "
            f"read in the closest, {closest.naming.label}, it {detail}: {fix}.")


def _shape_differences(
    state: Mapping[str, np.ndarray], expected: dict[str, tuple[int, ...]]
) -> tuple[int, int]:
    """How many of the file's parameter shapes the model does not make, and the reverse.

    Compared as multisets, whatever the naming: a file of another architecture holds shapes the
    model does not make (beyond the classifier's weight and bias, which --class-num changes); an
    incomplete file only lacks some.
    """
    have = Counter(tuple(v.shape) for k, v in state.items() if not is_training_state(k))
    want = Counter(tuple(shape) for shape in expected.values())
    return sum((have - want).values()), sum((want - have).values())
