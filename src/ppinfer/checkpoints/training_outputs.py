"""What PaddleClas and PaddleX training leave behind, read as the checkpoint it holds.

PaddleClas saves ``output/<Arch>/best_model.pdparams`` beside ``.pdopt`` and ``.pdstates``
(and with EMA ``.pdema``, the raw weights, while ``.pdparams`` holds the averaged ones), plus
``best_model/model.pdparams``; PaddleX saves ``output/best_model/best_model.pdparams``. Its
``load_dygraph_pretrain`` takes a path *prefix* and adds ``.pdparams``: ``-p
output/PPLCNet_x1_0/best_model`` means ``best_model.pdparams`` there, even where a
``best_model/`` folder shares the name. ppinfer reads ``-p`` the same way, and a training output
folder as its best model.

A distillation model's state dict keys every weight by the part it belongs to
(``Student.blocks2.0.dw_conv.conv.weight``, ``Teacher.stem.0.conv.weight``): one part is
exported, the student unless asked otherwise.

The training config is left as ``config.yaml`` in ``Global.output_dir`` by PaddleX's trainer
and, with ``Global.uniform_output_enabled`` (PaddleX sets it), by PaddleClas's
``tools/train.py``, whose ``save_model`` then writes each checkpoint one folder down
(``output/best_model/best_model.pdparams``, ``output/epoch_5/epoch_5.pdparams``,
``output/latest/latest.pdparams``) and the best one again two down
(``output/best_model/best_model/model.pdparams``). Without it PaddleClas keeps no config.
PaddleX's own evaluator and exporter look for ``config.yaml`` beside the weights, then one
folder up; :func:`configs_beside` looks the same way, bounded: only from a checkpoint named as
those tools name theirs, and up only through the folders they make.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ppinfer.checkpoints.matching import is_training_state
from ppinfer.checkpoints.namings import CheckpointState
from ppinfer.errors import CheckpointError

PDPARAMS = ".pdparams"
STATE_DICT_SUFFIXES = (PDPARAMS, ".pdema")  # .pdema: the same paddle.save of a state dict
NOT_WEIGHTS = {".pdopt": "optimizer state", ".pdstates": "training metrics"}  # saved beside
BEST = "best_model"
DEFAULT_PART = "Student"
# A distillation part is a sublayer PaddleClas's config names (Teacher, Student, Student2...):
# capitalised, unlike every layer attribute of the architectures (conv1, stem, blocks, fc).
_PART = re.compile(r"^([A-Z][A-Za-z0-9_]*)\.")
TRAINING_CONFIG = "config.yaml"  # in Global.output_dir (see the module doc)
CONFIG_LEVELS_UP = 2  # output/best_model/best_model/model.pdparams is the deepest save
# save_model's prefixes: the checkpoints' names, and the folders uniform output puts them in
_SAVE_FOLDER = re.compile(r"^(best_model|latest|epoch_[0-9]+)$")
_SAVED_NAME = re.compile(r"^(best_model|latest|epoch_[0-9]+)(_student)?$")


def checkpoint_file(path: Path) -> Path:
    """The file or folder ``-p path`` means, PaddleClas's way (see the module doc)."""
    prefixed = path.with_name(path.name + PDPARAMS)
    if path.suffix != PDPARAMS and path.name and prefixed.is_file():
        return prefixed
    if not path.is_dir():
        return path
    # uniform output's save folders hold their own prefix: output/epoch_5/epoch_5.pdparams
    own = (f"{path.name}{PDPARAMS}",) if _SAVE_FOLDER.match(path.name) else ()
    for inner in (*own, f"{BEST}{PDPARAMS}", f"{BEST}/{BEST}{PDPARAMS}", f"model{PDPARAMS}"):
        if (path / inner).is_file():
            return path / inner
    return path


def configs_beside(checkpoint: Path) -> list[Path]:
    """The training configs (``config.yaml``) in the output folder tree of ``checkpoint`` (a
    ``-p`` value), nearest first: none unless the checkpoint is named as PaddleClas's
    ``save_model`` names them, looked for in its folder and up only through folders named as
    that function names them, at most :data:`CONFIG_LEVELS_UP` levels (see the module doc)."""
    weights = checkpoint_file(Path(checkpoint))
    if not (weights.is_file() and _saved_by_training(weights)):
        return []
    folders = [Path(os.path.abspath(weights)).parent]
    while len(folders) <= CONFIG_LEVELS_UP and _SAVE_FOLDER.match(folders[-1].name):
        folders.append(folders[-1].parent)
    return [folder / TRAINING_CONFIG for folder in folders if _is_file(folder / TRAINING_CONFIG)]


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False where it cannot be seen (a folder above that the user may not
    search raises PermissionError there): the config is looked for, not required."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _saved_by_training(weights: Path) -> bool:
    """``best_model.pdparams``, ``epoch_5.pdema``, ``best_model_student.pdparams``,
    ``best_model/model.pdparams``: what ``save_model`` writes."""
    if weights.suffix not in STATE_DICT_SUFFIXES:
        return False
    return bool(_SAVED_NAME.match(weights.stem)) or (
        weights.name == f"model{PDPARAMS}" and weights.parent.name == BEST)


def parts_of(state: Mapping[str, np.ndarray]) -> list[str]:
    """The distillation parts ``state`` is keyed by (in file order), or [] when every key is
    not under a capitalised part name."""
    parts: dict[str, None] = {}
    for key in state:
        if is_training_state(key):
            continue
        match = _PART.match(key)
        if match is None:
            return []
        parts.setdefault(match.group(1))
    return list(parts)


def select_part(state: CheckpointState, part: str | None, source: str, asked: bool = True
                ) -> tuple[CheckpointState, str | None, list[str]]:
    """``state``'s part ``part`` (default: Student) with the part's prefix taken off, the part
    chosen and the parts found; ``state`` itself when it holds no parts and none was
    ``asked`` for (a distillation config's part may be saved alone)."""
    parts = parts_of(state)
    if not parts:
        if part is not None and asked:
            raise CheckpointError(f"--checkpoint-part {part}: {source} is one model's state "
                                  "dict, not a distillation model's: remove --checkpoint-part.")
        return state, None, []
    chosen = part or (DEFAULT_PART if DEFAULT_PART in parts else None)
    if chosen not in parts:
        asked = f"--checkpoint-part {part} is not one of them" if part else "which to export?"
        raise CheckpointError(f"{source} holds the distillation parts {', '.join(parts)}: "
                              f"{asked}; pass --checkpoint-part with one of them.")
    prefix = chosen + "."
    picked = CheckpointState((key[len(prefix):], value) for key, value in state.items()
                             if key.startswith(prefix))
    return picked, chosen, parts
