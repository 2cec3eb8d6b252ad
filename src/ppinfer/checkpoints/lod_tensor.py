"""Paddle's per-variable tensor file (what ``save_vars`` / 1.x ``save_persistables`` write).

Layout, little-endian: ``uint32`` version (0); ``uint64`` LoD level count, then per level a
``uint64`` byte size and that many bytes of offsets; ``uint32`` tensor version (0); ``int32``
size of a ``VarType.TensorDesc`` protobuf (field 1: data type enum, field 2: dims); the raw data.
Read here without Paddle so a checkpoint can be checked before anything is built.
"""

from __future__ import annotations

import io
import math
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ppinfer.errors import CheckpointError

# VarType.Type values -> numpy dtypes (framework.proto)
_DTYPES = {
    0: np.bool_, 1: np.int16, 2: np.int32, 3: np.int64, 4: np.float16, 5: np.float32,
    6: np.float64, 20: np.uint8, 21: np.int8, 23: np.complex64, 24: np.complex128,
}
_BF16 = 22


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def parse_tensor_desc(buf: bytes) -> tuple[int, list[int]]:
    dtype, dims, pos = None, [], 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
            if field_no == 1:
                dtype = value
            elif field_no == 2:
                dims.append(_signed64(value))
        elif wire == 2:
            size, pos = varint(buf, pos)
            chunk, pos = buf[pos : pos + size], pos + size
            if field_no == 2:  # packed dims
                inner = 0
                while inner < len(chunk):
                    value, inner = varint(chunk, inner)
                    dims.append(_signed64(value))
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    if dtype is None:
        raise ValueError("tensor description has no data type")
    return dtype, dims


def _exactly(fh: BinaryIO, size: int) -> bytes:
    chunk = fh.read(size)
    if len(chunk) != size:
        raise ValueError("file ends inside the tensor header")
    return chunk


def read_tensor_header(fh: BinaryIO) -> tuple[int, list[int], int]:
    """Parse the header of the tensor at ``fh``'s position and leave ``fh`` at its data.

    Returns (data type id, dims, data size in bytes); raises ValueError for a header that is
    cut short or does not describe a tensor. Shared by :func:`read_tensor` and by the
    header-only scan of a combined parameters file (ppinfer.checkpoints.integrity).
    """
    (version,) = struct.unpack("<I", _exactly(fh, 4))
    if version != 0:
        raise ValueError(f"unsupported tensor version {version}")
    (levels,) = struct.unpack("<Q", _exactly(fh, 8))
    if levels > 16:
        raise ValueError("implausible LoD level count")
    for _ in range(levels):
        (size,) = struct.unpack("<Q", _exactly(fh, 8))
        fh.seek(size, io.SEEK_CUR)  # LoD offsets: not needed, and a corrupt size is no read
    (tversion, desc_size) = struct.unpack("<Ii", _exactly(fh, 8))
    if tversion != 0 or not 0 < desc_size < 4096:
        raise ValueError("bad tensor header")
    dtype_id, dims = parse_tensor_desc(_exactly(fh, desc_size))
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in {dims}")
    if dtype_id == _BF16:
        itemsize = 2
    elif dtype_id in _DTYPES:
        itemsize = np.dtype(_DTYPES[dtype_id]).itemsize
    else:
        raise ValueError(f"unsupported data type id {dtype_id}")
    # math.prod on Python ints: a corrupt header cannot overflow into a small size
    return dtype_id, dims, math.prod(dims) * itemsize


def read_tensor(data: bytes, offset: int = 0) -> tuple[np.ndarray, int]:
    """Decode one serialized tensor at ``offset``; return it and the offset after it."""
    fh = io.BytesIO(data)
    fh.seek(offset)
    dtype_id, dims, nbytes = read_tensor_header(fh)
    pos = fh.tell()
    if pos + nbytes > len(data):
        raise ValueError(f"file ends after {len(data) - pos} of {nbytes} data bytes")
    count = math.prod(dims)
    if dtype_id == _BF16:
        raw = np.frombuffer(data, np.uint16, count, pos)
        array = (raw.astype(np.uint32) << 16).view(np.float32)
    else:
        dtype = np.dtype(_DTYPES[dtype_id]).newbyteorder("<")
        array = np.frombuffer(data, dtype, count, pos).astype(dtype.newbyteorder("="))
    return array.reshape(dims), pos + nbytes


def read_tensor_file(path: str | Path) -> np.ndarray:
    """Read a one-variable file; raise :class:`CheckpointError` naming the file when it is bad."""
    from ppinfer.io.safe_io import CHECKPOINT_MAX_BYTES, read_regular_file

    path = Path(path)
    data = read_regular_file(path, CHECKPOINT_MAX_BYTES, CheckpointError, what="variable file ")
    try:
        array, end = read_tensor(data)
    except ValueError as exc:
        raise CheckpointError(
            f"{path} is not a readable Paddle tensor file ({exc}): re-save the checkpoint."
        ) from None
    if end != len(data):
        raise CheckpointError(
            f"{path} holds {len(data) - end} bytes after its tensor: it is not a one-variable "
            "file (a combined params file needs its program: pass the model directory instead)."
        )
    return array
