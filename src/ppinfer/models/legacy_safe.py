"""Operations written with ones every program format accepts.

Export builds each architecture twice: as a PIR program and as a legacy-IR program. Under
Paddle 3 some functions (``F.gelu``, ``paddle.roll``, ``paddle.matmul``, ``F.sigmoid``) are
bound to kernels that accept PIR values only and refuse a legacy-IR variable; these helpers
compute the same in every mode (dygraph, PIR, legacy IR).
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F


def _legacy_static() -> bool:
    """Building a legacy-IR static program (neither dygraph nor PIR)."""
    in_pir = getattr(paddle.framework, "in_pir_mode", lambda: False)
    return not paddle.in_dynamic_mode() and not in_pir()


def gelu(x: paddle.Tensor) -> paddle.Tensor:
    """Exact (erf) GELU, as ``nn.GELU()``: one ``gelu`` operator in every format (OpenVINO reads
    the legacy program and has no ``erf``), appended directly in a legacy-IR program."""
    if not _legacy_static():
        return F.gelu(x)
    from paddle.base.layer_helper import LayerHelper

    helper = LayerHelper("gelu")
    out = helper.create_variable_for_type_inference(dtype=x.dtype)
    helper.append_op(type="gelu", inputs={"X": x}, outputs={"Out": out},
                     attrs={"approximate": False})
    return out


def roll(x: paddle.Tensor, shift: int, axes: tuple[int, ...]) -> paddle.Tensor:
    """``paddle.roll(x, shifts=shift, axis=axes)`` for static sizes along ``axes``: each axis
    cut in two and swapped, which moves the same elements."""
    for axis in axes:
        size = x.shape[axis]
        cut = -shift % size
        if cut:
            head = paddle.slice(x, axes=[axis], starts=[0], ends=[cut])
            tail = paddle.slice(x, axes=[axis], starts=[cut], ends=[size])
            x = paddle.concat([tail, head], axis=axis)
    return x


def sigmoid(x: paddle.Tensor) -> paddle.Tensor:
    """``F.sigmoid``, appended directly as one ``sigmoid`` operator in a legacy-IR program."""
    if not _legacy_static():
        return F.sigmoid(x)
    from paddle.base.layer_helper import LayerHelper

    helper = LayerHelper("sigmoid")
    out = helper.create_variable_for_type_inference(dtype=x.dtype)
    helper.append_op(type="sigmoid", inputs={"X": x}, outputs={"Out": out})
    return out
