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
  structured names for a family ppinfer builds with 1.x names.

:func:`fit_naming` tries each and keeps the one that covers the program's variables; it never
matches by position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ppinfer.checkpoints.matching import listing, match_state
from ppinfer.errors import CheckpointError


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


def _translate(
    state: Mapping[str, np.ndarray], naming: Naming, structured: Mapping[str, str]
) -> dict[str, np.ndarray]:
    """``state`` renamed into variable names; keys the naming does not know keep their own name
    (so match_state reports them as unexpected)."""
    renamed: dict[str, np.ndarray] = {}
    for key, value in state.items():
        name = naming.rename(key) or key
        renamed[structured.get(name, name)] = value
    return renamed


def candidate_namings(
    state: Mapping[str, np.ndarray], structured: Mapping[str, str], family: tuple[Naming, ...]
) -> list[Naming]:
    """Namings to try for ``state``, most specific first."""
    namings = [Naming("variable names", lambda key: key)]
    table = getattr(state, "structured_names", None)
    if table:
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

    ``structured`` maps the model's structured keys to variable names. Raises
    :class:`CheckpointError` naming the namings tried when none covers the program.
    """
    tried = []
    for naming in candidate_namings(state, structured, family):
        renamed = _translate(state, naming, structured)
        covered = sum(1 for name in expected if name in renamed)
        tried.append((covered, naming, renamed))
        if covered == len(expected):
            return match_state(expected, renamed, source=source, model_name=model_name)
    covered, naming, renamed = max(tried, key=lambda row: row[0])
    if covered == 0:
        labels = "; ".join(row[1].label for row in tried)
        raise CheckpointError(
            f"{source} names none of {model_name}'s {len(expected)} parameters in any naming "
            f"ppinfer knows ({labels}); its keys are {listing(sorted(state))}: check "
            "--model-name matches the checkpoint."
        )
    # The closest naming's own error says what is missing or of the wrong shape.
    try:
        match_state(expected, renamed, source=source, model_name=model_name)
    except CheckpointError as exc:
        raise CheckpointError(f"Read in its closest naming ({naming.label}), {exc}") from None
    raise AssertionError("unreachable: a naming that covers less than all must mismatch")
