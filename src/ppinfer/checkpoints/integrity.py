"""Check an inference model's parameter files against its program before Paddle loads them.

Paddle does not: a ``.pdiparams`` cut short, a per-variable file cut short, or the parameters
of a model with another class count all load without a word, and the predictor then returns
scores computed from garbage. Here the parameters are walked header by header (no tensor data
is read) and compared with what the program declares: the number of parameters, and each one's
shape, in the order Paddle's loaders use (parameter names sorted).

Programs are read without Paddle: a legacy ``ProgramDesc`` protobuf (``*.pdmodel``, ``model``,
``__model__``) with a minimal wire-format walker, a PIR ``*.json`` program with ``json``. A program
this module cannot interpret is left to Paddle; the parameters file is still walked.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ppinfer.checkpoints.lod_tensor import parse_tensor_desc, read_tensor_header, varint
from ppinfer.errors import ModelFormatError
from ppinfer.io.safe_io import PROGRAM_MAX_BYTES, check_regular_file, read_regular_file

# framework.proto VarType.Type values Paddle's loaders skip although persistable (IsPersistable
# in paddle/fluid/inference/io.cc): FEED_MINIBATCH, FETCH_LIST, RAW.
_NOT_SAVED = {9, 10, 17}
_DENSE_TENSOR = 7
_PIR_PARAMETER_OPS = ("p", "builtin.parameter")

Dims = tuple[int, ...]


# --- programs ---------------------------------------------------------------------------------


def program_parameters(program: Path) -> dict[str, Dims | None] | None:
    """Parameter name -> declared shape (None when not a dense tensor) of a saved program.

    None when the program's format is not one this module interprets. Raises
    :class:`ModelFormatError` for a program file that is damaged (truncated JSON or protobuf).
    """
    data = read_regular_file(program, PROGRAM_MAX_BYTES, ModelFormatError, what="program file ")
    if not data:
        raise ModelFormatError(
            f"Program file {program} is empty (0 bytes): copy or export the model again."
        )
    if program.suffix == ".json":
        return _pir_parameters(program, data)
    return _protobuf_parameters(program, data)


def _pir_parameters(program: Path, data: bytes) -> dict[str, Dims | None] | None:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFormatError(
            f"{program} is not a readable PIR program ({type(exc).__name__}: "
            f"{str(exc)[:80]}): copy or export the model again."
        ) from None
    try:
        ops = doc["program"]["regions"][0]["blocks"][0]["ops"]
        params: dict[str, Dims | None] = {}
        for op in ops:
            if op.get("#") not in _PIR_PARAMETER_OPS:
                continue
            name = op["A"][-1]
            dims = op["O"]["TT"]["D"][1]
            if not isinstance(name, str) or not isinstance(dims, list):
                return None
            params[name] = tuple(int(d) for d in dims)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None  # another serialization version: Paddle will judge
    return params or None


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: ints for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        field_no, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 2:
            size, pos = varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        if pos > len(buf):
            raise ValueError("message ends inside a field")
        yield field_no, value


def _protobuf_parameters(program: Path, data: bytes) -> dict[str, Dims | None] | None:
    try:
        blocks = [v for f, v in _fields(data) if f == 1]  # ProgramDesc.blocks
        if not blocks:
            return None
        params: dict[str, Dims | None] = {}
        for field_no, var in _fields(blocks[0]):  # the global block holds the parameters
            if field_no != 3:  # BlockDesc.vars
                continue
            name, var_type, persistable = None, None, False
            for f, v in _fields(var):
                if f == 1:
                    name = v.decode("utf-8")
                elif f == 2:
                    var_type = v
                elif f == 3:
                    persistable = bool(v)
            if not persistable or name is None or var_type is None:
                continue
            kind, dims = None, None
            for f, v in _fields(var_type):
                if f == 1:
                    kind = v
                elif f == 3:  # VarType.lod_tensor -> LoDTensorDesc.tensor (field 1)
                    tensor = next((t for tf, t in _fields(v) if tf == 1), None)
                    if tensor is not None:
                        dims = tuple(parse_tensor_desc(tensor)[1])
            if kind in _NOT_SAVED:
                continue
            params[name] = dims if kind == _DENSE_TENSOR else None
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(
            f"{program} is not a readable Paddle program ({exc}): copy or export the model again."
        ) from None
    return params


# --- parameters -------------------------------------------------------------------------------


def scan_combined(path: Path) -> list[Dims]:
    """The shape of every tensor in a combined parameters file, read from headers only.

    Raises :class:`ModelFormatError` when the file ends inside a tensor or holds bytes that are
    not a tensor.
    """
    size = check_regular_file(path, ModelFormatError, "parameters file ").st_size
    shapes: list[Dims] = []
    with open(path, "rb") as fh:
        while fh.tell() < size:
            shapes.append(_next_tensor(fh, path, size, len(shapes) + 1))
    return shapes


def _next_tensor(fh, path: Path, size: int, index: int) -> Dims:
    start = fh.tell()
    try:
        _, dims, nbytes = read_tensor_header(fh)
    except ValueError as exc:
        if "ends inside" in str(exc):
            raise ModelFormatError(
                f"{path} is truncated: it ends inside the header of tensor {index} (byte "
                f"{start} of {size}); copy or export the model again."
            ) from None
        raise ModelFormatError(
            f"{path} is damaged: tensor {index} at byte {start} has no valid header ({exc}); "
            "copy or export the model again."
        ) from None
    have = size - fh.tell()
    if nbytes > have:
        raise ModelFormatError(
            f"{path} is truncated: tensor {index} needs {nbytes} data bytes and the file has "
            f"{have} left; copy or export the model again."
        )
    fh.seek(nbytes, os.SEEK_CUR)
    return tuple(dims)


def scan_variable_file(path: Path) -> Dims:
    """The shape of the one tensor in a per-variable file; the file must hold exactly it."""
    size = check_regular_file(path, ModelFormatError, "variable file ").st_size
    with open(path, "rb") as fh:
        dims = _next_tensor(fh, path, size, 1)
        if fh.tell() != size:
            raise ModelFormatError(
                f"{path} holds {size - fh.tell()} bytes after its tensor: it is not one "
                "variable's file; copy or export the model again."
            )
    return dims


# --- the check --------------------------------------------------------------------------------


def check_model_files(program: Path, params: Path | None, root: Path) -> None:
    """Raise :class:`ModelFormatError` unless the parameters are complete and fit ``program``.

    ``params`` is the combined parameters file, or None for one file per variable in ``root``.
    """
    declared = program_parameters(program)
    if params is None:
        if declared is None:
            return
        found = []
        for name in sorted(declared):
            file = root / name
            if not os.path.lexists(file):
                raise ModelFormatError(
                    f"{root} lacks the file of variable {name}, which {program.name} needs: "
                    "copy the whole model directory again."
                )
            found.append(scan_variable_file(file))
        _check_fit(declared, found, f"the variable files in {root}", program)
        return
    found = scan_combined(params)
    if declared is not None:
        _check_fit(declared, found, str(params), program)
    elif not found:
        raise ModelFormatError(f"{params} is empty: copy or export the model again.")


def _check_fit(declared: dict[str, Dims | None], found: list[Dims], where: str,
               program: Path) -> None:
    names = sorted(declared)  # Paddle saves and loads parameters in name order
    if len(found) != len(names):
        raise ModelFormatError(
            f"{where} holds {len(found)} tensors and {program} declares {len(names)} "
            "parameters: they belong to different models, or a file is cut short; use the "
            "program and parameters exported together."
        )
    wrong = [(n, d, declared[n]) for n, d in zip(names, found) if not _fits(declared[n], d)]
    if not wrong:
        return
    shapes = [declared[n] for n in names]
    if all(s is not None and -1 not in s for s in shapes) and Counter(shapes) == Counter(found):
        return  # same shapes in another order: not the order assumed here, so not evidence
    name, got, want = wrong[0]
    others = ""
    if len(wrong) > 1:
        others = f" ({len(wrong) - 1} more differ{'s' if len(wrong) == 2 else ''})"
    raise ModelFormatError(
        f"{name} is {list(got)} in {where} and {list(want)} in {program}{others}: the "
        "parameters come from a model with another class count or architecture; use the "
        "program and parameters exported together."
    )


def _fits(want: Dims | None, got: Dims) -> bool:
    """Same shape, ``-1`` matching anything; size-1 dimensions do not count (Paddle's own
    post-training quantization saves ``[1, N]`` scales for variables declared ``[N]``)."""
    if want is None:
        return True
    want = [w for w in want if w != 1]
    got = [g for g in got if g != 1]
    return len(want) == len(got) and all(w in (-1, g) for w, g in zip(want, got))
