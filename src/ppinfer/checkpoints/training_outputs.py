"""PaddleClas's and PaddleX's training outputs: which file in them is the checkpoint, and which
part of a distillation state dict is the model.

PaddleClas 2.x saves ``output/<Arch>/best_model.pdparams`` beside ``.pdopt`` (optimizer) and
``.pdstates`` (metrics), and ``.pdema`` with EMA, plus ``best_model/model.pdparams``; its configs
name a checkpoint by that prefix
(``Global.pretrained_model: output/PPLCNet_x1_0/best_model``, which ``load_dygraph_pretrain``
completes with ``.pdparams``). PaddleX's training output folder holds ``best_model/`` with
``best_model.pdparams`` inside, beside its ``config.yaml``. A distillation model's state dict
holds every model of it, each under its name: ``Student.conv1.conv.weight``,
``Teacher.fc.bias``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ppinfer.checkpoints.matching import is_training_state, listing
from ppinfer.checkpoints.namings import CheckpointState
from ppinfer.errors import CheckpointError

BEST = "best_model"
OUTPUT_CONFIG = "config.yaml"  # PaddleX's training output: the config it trained with
WEIGHT_SUFFIXES = (".pdparams", ".pdema")  # .pdema: the EMA run's other set of weights
NOT_WEIGHTS = {".pdopt": "optimizer state", ".pdstates": "training metrics"}
DEFAULT_PART = "Student"


def checkpoint_file(path: Path) -> Path | None:
    """The weights file a training-output path means, or None when it is not one.

    ``DIR/best_model`` when ``DIR/best_model.pdparams`` exists (a prefix, completed with
    ``.pdparams`` as PaddleClas's ``load_dygraph_pretrain`` does, also where a folder of that
    name exists), a folder holding ``best_model.pdparams`` or a single ``.pdparams`` (PaddleClas
    2.6's ``best_model/model.pdparams``), and a PaddleX output folder
    (``best_model/best_model.pdparams``). A folder without ``.pdparams`` is not one: it may be a
    persistable checkpoint.
    """
    prefixed = path.with_name(path.name + ".pdparams") if path.name else None
    if prefixed is not None and prefixed.is_file() and path.suffix != ".pdparams":
        return prefixed
    if not path.is_dir():
        return None
    for candidate in (path / f"{BEST}.pdparams", path / BEST / f"{BEST}.pdparams"):
        if candidate.is_file():
            return candidate
    found = sorted(p for p in path.glob("*.pdparams") if p.is_file())
    if len(found) > 1:
        raise CheckpointError(
            f"{path} holds {len(found)} .pdparams files ({listing([p.name for p in found])}) "
            "and no best_model.pdparams: pass the one to export with -p/--params."
        )
    return found[0] if found else None


def output_config(path: Path) -> Path | None:
    """The ``config.yaml`` of the PaddleX training output ``path`` is in or names: the output
    folder itself, or its ``best_model``/``epoch_N``/``latest`` folder, file or prefix."""
    path = Path(os.path.abspath(path))
    for folder in (path, path.parent, path.parent.parent):
        config = folder / OUTPUT_CONFIG
        if config.is_file() and (folder / BEST).is_dir():
            inside = folder == path or path.is_relative_to(folder / BEST) or _epoch(path, folder)
            if inside:
                return config
    return None


def _epoch(path: Path, folder: Path) -> bool:
    """``path`` is in (or is the prefix of) one of PaddleX's per-epoch folders of ``folder``."""
    parts = path.relative_to(folder).parts
    return bool(parts) and (parts[0].startswith("epoch_") or parts[0] == "latest")


def refuse_non_weights(path: Path) -> None:
    """A ``.pdopt`` or ``.pdstates`` passed as the checkpoint: say which file is."""
    what = NOT_WEIGHTS.get(path.suffix)
    if what is not None:
        weights = path.with_suffix(".pdparams")
        raise CheckpointError(f"{path} holds {what}, not the model's weights: pass {weights}.")


def model_parts(state: dict[str, np.ndarray]) -> list[str]:
    """The models of a distillation state dict (``Student``, ``Teacher``), else ``[]``.

    Every model key of such a file starts with a capitalised name and a dot; the keys of a
    single model (structured names, 1.x variable names) start in lower case.
    """
    heads = set()
    for key in state:
        if is_training_state(key):
            continue
        head, dot, _ = key.partition(".")
        if not (dot and head[:1].isupper()):
            return []
        heads.add(head)
    return sorted(heads) if len(heads) > 1 or DEFAULT_PART in heads else []


def select_part(state: dict[str, np.ndarray], part: str | None, source: str,
                asked: bool = True) -> tuple[dict[str, np.ndarray], str | None, str | None]:
    """``state``'s model ``part`` (default: Student) with its prefix removed, that part's name,
    and a note when the part was chosen by default; a single model's state as it is (refused
    when the user ``asked`` for a part; a distillation config's part may be saved alone, as
    PaddleClas's ``best_model_student.pdparams``)."""
    parts = model_parts(state)
    if not parts:
        if part is not None and asked:
            raise CheckpointError(f"--checkpoint-part {part}: {source} holds one model, not a "
                                  "distillation model's parts.")
        return state, None, None
    note = None
    if part is None:
        if DEFAULT_PART not in parts:
            raise CheckpointError(f"{source} holds a distillation model's parts "
                                  f"{', '.join(parts)}: pass --checkpoint-part with one of them.")
        part = DEFAULT_PART
        note = (f"{source} holds a distillation model ({', '.join(parts)}): exporting its "
                f"{part} (--checkpoint-part NAME picks another).")
    if part not in parts:
        raise CheckpointError(f"--checkpoint-part {part} is not in {source}, which holds "
                              f"{', '.join(parts)}.")
    prefix = f"{part}."
    chosen = CheckpointState(
        (key[len(prefix):], value) for key, value in state.items() if key.startswith(prefix)
    )
    return chosen, part, note
