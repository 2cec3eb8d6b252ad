"""Checkpoints: read any supported file into ``{variable name: ndarray}``, then fit it to a model.

- a persistable directory (one file per variable, PaddleClas 1.x's ``save_persistables`` layout);
- a ``.pdparams`` pickle (``paddle.save`` / ``paddle.static.save``), read with a restricted
  unpickler, also named by its prefix (``output/best_model``, as PaddleClas's configs do) or by
  the training output folder holding it (``checkpoints/training_outputs.py``); ``.pdema`` (an EMA
  run's other weights) is read the same way;
- a PyTorch checkpoint (``.pth``, ``.pt``, ``.bin``, ``.ckpt``), read without torch and mapped by
  the architecture's declared name map.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ppinfer.checkpoints.lod_tensor import read_tensor_file
from ppinfer.checkpoints.matching import match_state
from ppinfer.checkpoints.namings import CheckpointState
from ppinfer.errors import CheckpointError
from ppinfer.safe_io import check_regular_file

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".tar")

__all__ = ["load_checkpoint", "match_state", "read_persistable_dir", "read_pdparams",
           "resolve_checkpoint", "sha256"]


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


def resolve_checkpoint(path: str | Path) -> Path:
    """The file or persistable folder ``path`` names: a training output's prefix or folder
    resolves to its ``.pdparams`` (see :func:`training_outputs.checkpoint_file`)."""
    from ppinfer.checkpoints.training_outputs import checkpoint_file

    path = Path(path)
    found = checkpoint_file(path)
    if found is not None:
        return found
    if not path.exists():
        raise CheckpointError(f"Checkpoint {path} does not exist: check the -p/--params path.")
    return path


def load_checkpoint(path: str | Path, spec=None) -> dict[str, np.ndarray]:
    """Read the checkpoint at ``path`` (see module doc) into arrays keyed by Paddle names."""
    from ppinfer.checkpoints.training_outputs import WEIGHT_SUFFIXES, refuse_non_weights

    path = resolve_checkpoint(path)
    if path.is_dir():
        return read_persistable_dir(path)
    check_regular_file(path, CheckpointError, "checkpoint ")  # a FIFO would block open()
    refuse_non_weights(path)
    if path.suffix in WEIGHT_SUFFIXES:
        return read_pdparams(path)
    if path.suffix in TORCH_SUFFIXES:
        return read_torch(path, spec)
    raise CheckpointError(
        f"{path} is not a checkpoint ppinfer reads: pass a persistable directory, a .pdparams "
        f"(or .pdema) file or a PyTorch file ({', '.join(TORCH_SUFFIXES)})."
    )


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
