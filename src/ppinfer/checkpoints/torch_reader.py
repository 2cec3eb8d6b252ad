"""Read a PyTorch checkpoint into numpy arrays, without torch and without running its pickle.

Two layouts exist (``torch.save`` before and after PyTorch 1.6):

* **zip**: ``<prefix>/data.pkl`` holds the object; each tensor storage is the raw little-endian
  file ``<prefix>/data/<key>``.
* **legacy stream**: five pickles in a row (magic number, protocol version, sys info, the object,
  the list of storage keys), then for each key in that order an 8-byte little-endian element
  count followed by the storage's raw bytes.

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
...)`` where ``storage`` is a persistent id ``("storage", torch.FloatStorage, key, location,
numel[, view])``. Those names are mapped to the local stand-ins below, which record what to build;
arrays are built once the storage bytes are at hand.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np

from ppinfer.checkpoints.safe_pickle import safe_load
from ppinfer.errors import CheckpointError, UnsafePickleError
from ppinfer.io.safe_io import CHECKPOINT_MAX_BYTES

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
PICKLE_MAX_BYTES = 256 << 20  # data.pkl holds names and shapes, never tensor data
# Checkpoints that wrap the weights: {"state_dict": {...}, "epoch": ...}.
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict", "net")


@dataclass(frozen=True)
class _StorageType:
    """Stands in for ``torch.FloatStorage`` etc.; ``dtype`` None means ppinfer cannot read it."""

    name: str
    dtype: str | None


# torch storage class name -> numpy dtype ("bfloat16" is widened to float32 on read).
_STORAGE_DTYPES: dict[str, str | None] = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "UntypedStorage": "u1",
    "BoolStorage": "?",
    "ComplexFloatStorage": "<c8",
    "ComplexDoubleStorage": "<c16",
    # Known, but not readable as plain numpy arrays.
    "QInt8Storage": None,
    "QUInt8Storage": None,
    "QInt32Storage": None,
    "QUInt4x2Storage": None,
    "QUInt2x4Storage": None,
}


@dataclass(frozen=True)
class _StorageRef:
    key: str
    stype: _StorageType
    numel: int
    view: tuple[int, int] | None = None  # legacy storage views: (offset, numel) in the root


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise CheckpointError("A tensor in the checkpoint does not point at a tensor storage.")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


TORCH_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", n): _StorageType(n, d) for n, d in _STORAGE_DTYPES.items()},
}


def _persistent_load(pid: Any) -> _StorageRef:
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise CheckpointError(f"The checkpoint holds an unknown persistent id {pid!r}.")
    _, stype, key, _location, numel, *rest = pid
    if not isinstance(stype, _StorageType):
        raise CheckpointError(f"The checkpoint's storage type {stype!r} is not a torch storage.")
    view = None
    if rest and rest[0] is not None:  # legacy: (view_key, offset, numel) into the root storage
        view = (int(rest[0][1]), int(rest[0][2]))
    return _StorageRef(str(key), stype, int(numel), view)


def read_torch_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Return the tensors of a ``torch.save`` file as ``{key: ndarray}``, in file order.

    A state dict nested under ``state_dict``/``model``/... is unwrapped; entries that are not
    tensors (e.g. ``epoch``) are dropped. Raises :class:`CheckpointError` (or its subclass
    ``UnsafePickleError``) with one sentence if the file cannot be read.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            obj = _load_zip(path)
        else:
            with path.open("rb") as f:
                obj = _load_legacy(f, path)
    except OSError as exc:
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc.strerror or exc}.") from exc
    return _tensors_of(_unwrap(obj), path)


def _load_zip(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl = next((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), None)
            if pkl is None:
                raise CheckpointError(f"{path} is a zip file but not a PyTorch checkpoint "
                                      "(no data.pkl inside).")
            prefix = pkl[: -len("data.pkl")]
            byteorder = prefix + "byteorder"  # absent before torch 1.12: little-endian
            if byteorder in names and _read_entry(zf, byteorder, 16, path).strip() != b"little":
                raise CheckpointError(f"{path} was saved big-endian, which ppinfer cannot read.")
            data = io.BytesIO(_read_entry(zf, pkl, PICKLE_MAX_BYTES, path))
            data.name = str(path)
            obj = safe_load(data, TORCH_ALLOWED, _persistent_load)

            def read_storage(ref: _StorageRef) -> bytes:
                # Read no further than numel needs: a compressed entry can inflate to far more.
                need = _storage_bytes(ref, path)
                try:
                    with zf.open(f"{prefix}data/{ref.key}") as entry:
                        return entry.read(need)
                except KeyError:
                    raise CheckpointError(
                        f"{path} is missing the storage data/{ref.key}; the file is incomplete."
                    ) from None

            return _materialize(obj, read_storage, path)
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"{path} is a damaged zip file ({exc}).") from exc


def _read_entry(zf: zipfile.ZipFile, name: str, limit: int, path: Path) -> bytes:
    """A zip entry, refused if it inflates past ``limit`` bytes (read no further)."""
    with zf.open(name) as entry:
        data = entry.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"{path}: the zip entry {name} inflates past {limit} bytes, more "
                              "than a PyTorch checkpoint's needs; the file is damaged or crafted.")
    return data


def _load_legacy(f: IO[bytes], path: Path) -> Any:
    if _is_tar(f):
        raise CheckpointError(f"{path} uses the tar format of PyTorch < 0.4, which ppinfer "
                              "cannot read; re-save it with a newer torch.")
    magic = _safe_header(f, path)
    if not (isinstance(magic, int) and magic == LEGACY_MAGIC):
        raise _not_torch(path)
    _safe_header(f, path)  # protocol version
    sys_info = _safe_header(f, path)
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise CheckpointError(f"{path} was saved big-endian, which ppinfer cannot read.")
    obj = safe_load(f, TORCH_ALLOWED, _persistent_load)
    keys = safe_load(f)
    if not isinstance(keys, list):  # the storage keys, in the order their bytes follow
        raise CheckpointError(f"{path} has no storage key list after its object.")
    roots = {t.storage.key: t.storage for t in _walk(obj) if isinstance(t, _TensorRef)}
    blobs: dict[str, bytes] = {}
    file_size = os.fstat(f.fileno()).st_size
    for key in map(str, keys):
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is truncated: storage {key} is missing.")
        if key not in roots:
            raise CheckpointError(f"{path} lists storage {key}, but no tensor uses it.")
        (count,) = struct.unpack("<q", head)
        if count < 0:
            raise CheckpointError(f"{path} is damaged: storage {key} has a negative size.")
        itemsize = _itemsize(roots[key].stype, path)
        if count * itemsize > min(file_size - f.tell(), CHECKPOINT_MAX_BYTES):
            raise CheckpointError(f"{path} is truncated or damaged: storage {key} claims "
                                  f"{count} elements, more than the file holds.")
        blob = f.read(count * itemsize)
        if len(blob) < count * itemsize:
            raise CheckpointError(f"{path} is truncated inside storage {key}.")
        blobs[key] = blob
    return _materialize(obj, lambda ref: blobs.get(ref.key, b""), path)


def _is_tar(f: IO[bytes]) -> bool:
    """True for the pre-0.4 tar layout (``ustar`` at byte 257)."""
    pos = f.tell()
    f.seek(257)
    is_tar = f.read(5) == b"ustar"
    f.seek(pos)
    return is_tar


def _safe_header(f: IO[bytes], path: Path) -> Any:
    try:
        return safe_load(f)
    except UnsafePickleError:
        raise
    except CheckpointError as exc:
        raise _not_torch(path) from exc


def _not_torch(path: Path) -> CheckpointError:
    return CheckpointError(
        f"{path} is not a PyTorch checkpoint (neither a zip archive nor a torch.save stream)."
    )


def _walk(obj: Any):
    if isinstance(obj, Mapping):
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _walk(v)
    else:
        yield obj


def _itemsize(stype: _StorageType, path: Path) -> int:
    if stype.dtype is None:
        raise CheckpointError(f"{path} holds a torch.{stype.name} tensor; ppinfer reads only "
                              "float, integer and bool tensors.")
    return 2 if stype.dtype == "bfloat16" else np.dtype(stype.dtype).itemsize


def _storage_bytes(ref: _StorageRef, path: Path) -> int:
    """Bytes the storage's element count needs; refused over the overall checkpoint limit."""
    need = max(ref.numel, 0) * _itemsize(ref.stype, path)
    if need > CHECKPOINT_MAX_BYTES:
        raise CheckpointError(
            f"{path} has a storage of {ref.numel} elements ({need / 1e9:.3g} GB), over "
            f"ppinfer's limit of {CHECKPOINT_MAX_BYTES / 1e9:.3g} GB for a checkpoint."
        )
    return need


def _storage_array(ref: _StorageRef, blob: bytes, path: Path) -> np.ndarray:
    itemsize = _itemsize(ref.stype, path)
    usable = len(blob) - len(blob) % itemsize
    if ref.stype.dtype == "bfloat16":  # bfloat16 is the top half of a float32
        flat = (np.frombuffer(blob[:usable], "<u2").astype("<u4") << 16).view("<f4")
    else:
        flat = np.frombuffer(blob[:usable], ref.stype.dtype)
    if ref.view is not None:
        flat = flat[ref.view[0] : ref.view[0] + ref.view[1]]
    return flat


def _tensor_array(t: _TensorRef, flat: np.ndarray, path: Path, key: str) -> np.ndarray:
    if len(t.size) != len(t.stride) or any(s < 0 for s in t.stride) or t.offset < 0:
        raise CheckpointError(f"Tensor {key} in {path} has an invalid size/stride.")
    if 0 in t.size:
        return np.empty(t.size, flat.dtype)
    elements = math.prod(t.size)
    if elements > len(flat):  # stride 0 would let a one-element storage fill any size
        raise CheckpointError(
            f"Tensor {key} in {path} claims {elements} elements from a storage of {len(flat)}: "
            "the file is damaged or crafted."
        )
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if last >= len(flat):
        raise CheckpointError(f"Tensor {key} in {path} reaches past its storage; the file is "
                              "truncated or damaged.")
    view = np.lib.stride_tricks.as_strided(
        flat[t.offset :], shape=t.size, strides=[s * flat.itemsize for s in t.stride],
        writeable=False,
    )
    return np.array(view, order="C", copy=True)  # own, writable, C-contiguous memory


def _materialize(obj: Any, read_storage: Callable[[_StorageRef], bytes], path: Path) -> Any:
    """Replace every _TensorRef in ``obj`` (dicts, lists, tuples) by its ndarray."""
    cache: dict[str, np.ndarray] = {}
    total = 0  # bytes of the arrays built so far

    def build(value: Any, key: str) -> Any:
        nonlocal total
        if isinstance(value, _TensorRef):
            ref = value.storage
            cache_key = f"{ref.key}/{ref.view}"
            if cache_key not in cache:
                cache[cache_key] = _storage_array(ref, read_storage(ref), path)
            array = _tensor_array(value, cache[cache_key], path, key)
            total += array.nbytes
            if total > CHECKPOINT_MAX_BYTES:
                raise CheckpointError(
                    f"{path}'s tensors add up to more than ppinfer's limit of "
                    f"{CHECKPOINT_MAX_BYTES / 1e9:.3g} GB for a checkpoint."
                )
            return array
        if isinstance(value, dict):
            return type(value)((k, build(v, str(k))) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return type(value)(build(v, key) for v in value)
        return value

    return build(obj, "")


def _unwrap(obj: Any) -> Any:
    while isinstance(obj, Mapping) and not any(isinstance(v, np.ndarray) for v in obj.values()):
        inner = next((obj[k] for k in STATE_DICT_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    return obj


def _tensors_of(obj: Any, path: Path) -> dict[str, np.ndarray]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict; save "
                              "model.state_dict() instead of the model.")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, np.ndarray)}
    if not tensors:
        raise CheckpointError(f"{path} holds no tensors.")
    return tensors
