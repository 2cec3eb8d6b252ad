"""Operations written with ones every program format accepts.

Export builds each architecture twice: as a PIR program and as a legacy-IR program. Under
Paddle 3 some functions (``F.gelu``, ``paddle.roll``, ``paddle.matmul``, ``F.sigmoid``) are
bound to kernels that accept PIR values only and refuse a legacy-IR variable; these helpers
compute the same with operators that take both (and dygraph tensors too).
"""

from __future__ import annotations

import math

import paddle


def gelu(x: paddle.Tensor) -> paddle.Tensor:
    """Exact (erf) GELU, as ``nn.GELU()``: ``x * (1 + erf(x / sqrt(2))) / 2``."""
    return x * 0.5 * (1.0 + paddle.erf(x * (1.0 / math.sqrt(2.0))))


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
