"""Facts about registered architectures for ``ppinfer models``: parameter counts without
allocating weights (``paddle.LazyGuard`` builds the layers with shapes only)."""

from __future__ import annotations

import math
from typing import Any

from ppinfer.models.registry import get_model, list_models
from ppinfer.runtime.paddle_import import import_paddle


def parameter_count(name: str, class_num: int = 1000) -> int:
    """Trainable parameters of ``name`` (BN running statistics excluded), like PaddleClas's."""
    paddle = import_paddle()
    spec = get_model(name)
    with paddle.LazyGuard():
        net = spec.build(class_num=class_num)
    return sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient)


def model_rows(pattern: str = "*") -> list[dict[str, Any]]:
    rows = []
    for name in list_models(pattern):
        spec = get_model(name)
        pre = spec.preprocess
        rows.append({
            "name": name,
            "aliases": list(spec.aliases),
            "family": spec.family,
            "parameters": parameter_count(name),
            "input_shape": list(spec.input_shape),
            "preprocess": f"{pre.resize_short}→{pre.crop_size[0]} "
                          f"{pre.interpolation}",
        })
    return rows
