"""Checkpoints: read any supported file into ``{variable name: ndarray}``, then fit it to a model.

- a persistable directory (one file per variable, PaddleClas 1.x's ``save_persistables`` layout);
- a ``.pdparams`` pickle (``paddle.save`` / ``paddle.static.save``), read with a restricted
  unpickler;
- a PyTorch checkpoint (``.pth``, ``.pt``, ``.bin``, ``.ckpt``), read without torch and mapped by
  the architecture's declared name map.

Training outputs are read as PaddleClas reads them (``checkpoints/training_outputs.py``): a
``best_model`` prefix or output folder means its ``best_model.pdparams``, ``.pdema`` is a state
dict too, and of a distillation model's state dict one part (the student by default) is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ppinfer.checkpoints.lod_tensor import read_tensor_file
from ppinfer.checkpoints.matching import match_state
from ppinfer.checkpoints.namings import CheckpointState
from ppinfer.checkpoints.training_outputs import (
    NOT_WEIGHTS,
    PDPARAMS,
    STATE_DICT_SUFFIXES,
    checkpoint_file,
    select_part,
)
from ppinfer.errors import CheckpointError
from ppinfer.io.safe_io import check_regular_file

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")

__all__ = ["load_checkpoint", "match_state", "read_persistable_dir", "read_pdparams", "sha256"]


def read_persistable_dir(path: Path) -> dict[str, np.ndarray]:
    state: dict[str, np.ndarray] = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        name = file.relative_to(path).as_posix()
        if name.startswith(".") or file.suffix in (".pdmodel", ".json", ".yml", ".yaml", ".txt"):
            continue
        if name in ("model", "__model__", "params"):  # program / combined params: not variables
            continue
        state[name] = read_tensor_file(file)
    if not state:
        raise CheckpointError(
            f"{path} holds no variable files: it is not a persistable checkpoint."
        )
    return state


def read_pdparams(path: Path) -> dict[str, np.ndarray]:
    from ppinfer.checkpoints.safe_pickle import safe_load

    try:
        with open(path, "rb") as fh:
            obj = safe_load(fh)
    except CheckpointError:
        raise
    except Exception as exc:  # any unpickling failure of a damaged file
        raise CheckpointError(
            f"{path} cannot be read as a .pdparams file ({type(exc).__name__}: {exc}): "
            "it may be truncated; save it again."
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict.")
    state = CheckpointState()
    table = obj.get("StructuredToParameterName@@")
    if isinstance(table, dict):  # 2.0-era paddle.save: structured key -> variable name
        state.structured_names = {str(k): str(v) for k, v in table.items()}
    for key, value in obj.items():
        if key == "StructuredToParameterName@@":
            continue
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], np.ndarray):
            value = value[1]  # paddle.save of a Tensor pickles as (name, array)
        if isinstance(value, np.ndarray):
            state[str(key)] = value
    if not state:
        raise CheckpointError(f"{path} holds no arrays: it is not a parameter file.")
    return state


def read_torch(path: Path, spec=None) -> dict[str, np.ndarray]:
    from ppinfer.checkpoints.torch_reader import read_torch_checkpoint

    state = read_torch_checkpoint(path)
    mapper = (spec.foreign_maps.get("torch") if spec is not None else None)
    if mapper is None:
        name = spec.name if spec is not None else "this architecture"
        raise CheckpointError(
            f"{path} is a PyTorch checkpoint, and {name} declares no PyTorch name map: "
            "convert it to .pdparams first."
        )
    return mapper(state)


@dataclass
class Checkpoint:
    """A checkpoint read: its arrays, the file or folder they came from, and of a distillation
    model's state dict the part kept and the parts found."""

    state: dict[str, np.ndarray]
    path: Path
    part: str | None = None
    parts: list[str] = field(default_factory=list)


def read_checkpoint(path: str | Path, spec=None, part: str | None = None,
                    part_asked: bool = True) -> Checkpoint:
    """Read the checkpoint ``-p path`` means (see the module doc) into arrays keyed by Paddle
    names; ``part`` picks a distillation model's part (default: Student). A part the user did
    not ask for (``part_asked=False``: a distillation config's) is not required: that part
    saved alone loads as it is."""
    given = Path(path)
    path = checkpoint_file(given)
    if path.is_dir():
        state = read_persistable_dir(path)
    elif not path.exists():
        raise CheckpointError(f"Checkpoint {given} does not exist: check the -p/--params path.")
    else:
        check_regular_file(path, CheckpointError, "checkpoint ")  # a FIFO would block open()
        if path.suffix in STATE_DICT_SUFFIXES:
            state = read_pdparams(path)
        elif path.suffix in TORCH_SUFFIXES:
            state = read_torch(path, spec)
        elif path.suffix in NOT_WEIGHTS:
            raise CheckpointError(f"{path} holds {NOT_WEIGHTS[path.suffix]}, not the model's "
                                  f"weights: pass {path.with_suffix(PDPARAMS)}.")
        else:
            raise CheckpointError(
                f"{path} is not a checkpoint ppinfer reads: pass a persistable directory, a "
                f".pdparams (or .pdema) file or a PyTorch file ({', '.join(TORCH_SUFFIXES)})."
            )
    if isinstance(state, CheckpointState):
        state, chosen, parts = select_part(state, part, str(path), part_asked)
        return Checkpoint(state, path, chosen, parts)
    if part is not None and part_asked:
        raise CheckpointError(f"--checkpoint-part {part}: {path} holds one model, not a "
                              "distillation model's parts: remove --checkpoint-part.")
    return Checkpoint(state, path)


def load_checkpoint(path: str | Path, spec=None, part: str | None = None
                    ) -> dict[str, np.ndarray]:
    """The arrays of :func:`read_checkpoint`."""
    return read_checkpoint(path, spec, part).state


def sha256(path: str | Path) -> str:
    """Digest of a checkpoint file, or of a directory's files (names and contents, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with open(file, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
