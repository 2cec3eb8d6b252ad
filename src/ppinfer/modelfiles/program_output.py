"""What a saved program's output is: probabilities (it ends in softmax), per-class sigmoid
scores, or logits. A fact about the model, read once from its program, never guessed from a
batch of scores (a bf16 row of probabilities sums to 1 only within about 1e-3).

The walk starts at the fetch op and goes back through the ops that only pass a tensor on
(``scale`` by 1 with bias 0, which ``save_inference_model`` adds in front of every fetch on
Paddle 2.x, reshapes, flattens, squeezes, assigns): the first other op decides. Programs are
read without Paddle, like :mod:`ppinfer.checkpoints.integrity` reads them: a legacy
``ProgramDesc`` with the same wire-format walker, a PIR ``.json`` with ``json``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ppinfer.checkpoints.integrity import _fields

SOFTMAX, SIGMOID, LOGITS = "softmax", "sigmoid", "logits"
OUTPUTS = (SOFTMAX, SIGMOID, LOGITS)
MAX_PROGRAM_BYTES = 512 << 20  # a classification program is a few MB at most

_PASS_THROUGH = {"reshape", "reshape2", "flatten", "flatten2", "flatten_contiguous_range",
                 "squeeze", "squeeze2", "squeeze_", "assign", "share_data", "dropout",
                 # Paddle's post-training quantization rounds the softmax's output through a
                 # quantize / dequantize pair: still the softmax's probabilities
                 "quantize_linear", "dequantize_linear", "fake_quantize_dequantize_abs_max",
                 "fake_quantize_dequantize_moving_average_abs_max",
                 "fake_channel_wise_quantize_dequantize_abs_max"}
_FETCH = {"fetch", "fetch_v2", "shadow_output"}


def output_kind(program: str | Path) -> str | None:
    """``softmax``, ``sigmoid`` or ``logits`` for the program at ``program``; None when the
    file cannot be read or its format is one this module does not interpret."""
    path = Path(program)
    try:
        if not path.is_file() or path.stat().st_size > MAX_PROGRAM_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    try:
        ops = _pir_ops(data) if path.suffix == ".json" else _legacy_ops(data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, UnicodeDecodeError,
            struct.error):
        return None
    return _decide(ops) if ops else None


def kind_of_op(op_type: str) -> str:
    if op_type == "softmax" or op_type.endswith("_softmax"):
        return SOFTMAX
    if op_type == "sigmoid":
        return SIGMOID
    return LOGITS


# An op as (type, input names, output names, identity?): identity is False for a scale op
# that changes values.
_Op = tuple[str, list, list, bool]


def _decide(ops: list[_Op]) -> str | None:
    """Walk back from the first fetch op; each tensor's producer is the last op before the
    reader that writes it (``save_inference_model``'s scale can write its own input)."""
    at = next((i for i, op in enumerate(ops) if op[0] in _FETCH), None)
    if at is None or not ops[at][1]:
        return None
    name = ops[at][1][0]
    for _ in range(len(ops)):
        at = next((i for i in range(at - 1, -1, -1) if name in ops[i][2]), None)
        if at is None:
            return None
        op_type, inputs, _outputs, identity = ops[at]
        passes = op_type in _PASS_THROUGH or (op_type == "scale" and identity)
        if not passes:
            return kind_of_op(op_type)
        if not inputs:
            return None
        name = inputs[0]
    return None


# -- PIR (.json) --------------------------------------------------------------------------------


def _pir_ops(data: bytes) -> list[_Op]:
    doc = json.loads(data)
    ops = []
    for op in doc["program"]["regions"][0]["blocks"][0]["ops"]:
        op_type = str(op.get("#", "")).split(".", 1)[-1]
        inputs = [v.get("%") for v in op.get("I") or [] if isinstance(v, dict)]
        outputs = [v.get("%") for v in op.get("O") or [] if isinstance(v, dict)]
        if op_type == "scale":
            inputs = inputs[:1]  # the second input is the scale tensor
        ops.append((op_type, inputs, outputs, op_type != "scale" or _pir_identity_scale(op)))
    return ops


def _pir_identity_scale(op: dict) -> bool:
    attrs = {a.get("N"): (a.get("AT") or {}).get("D") for a in op.get("A") or []}
    return attrs.get("bias", 0.0) == 0.0 and attrs.get("scale", 1.0) in (1.0, None)


# -- legacy ProgramDesc -------------------------------------------------------------------------


def _legacy_ops(data: bytes) -> list[_Op]:
    blocks = [v for f, v in _fields(data) if f == 1]  # ProgramDesc.blocks
    if not blocks:
        return []
    return [_legacy_op(v) for f, v in _fields(blocks[0]) if f == 4]  # BlockDesc.ops


def _legacy_op(buf: bytes) -> _Op:
    """OpDesc: inputs = 1, outputs = 2 (Var: parameter = 1, arguments = 2), type = 3,
    attrs = 4 (Attr: name = 1, f = 4)."""
    op_type, inputs, outputs, floats = "", [], [], {}
    for field_no, value in _fields(buf):
        if field_no == 3:
            op_type = value.decode("utf-8")
        elif field_no in (1, 2):
            slot, names = None, []
            for f, v in _fields(value):
                if f == 1:
                    slot = v.decode("utf-8")
                elif f == 2:
                    names.append(v.decode("utf-8"))
            if field_no == 2:
                outputs += names
            elif slot in ("X", "Input", "x"):
                inputs = names + inputs
            else:
                inputs += names
        elif field_no == 4:
            name, number = None, None
            for f, v in _fields(value):
                if f == 1:
                    name = v.decode("utf-8")
                elif f == 4 and isinstance(v, bytes) and len(v) == 4:
                    number = struct.unpack("<f", v)[0]
            if name is not None and number is not None:
                floats[name] = number
    identity = op_type != "scale" or (floats.get("scale", 1.0) == 1.0
                                      and floats.get("bias", 0.0) == 0.0)
    return (op_type, inputs, outputs, identity)
