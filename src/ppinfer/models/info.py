"""Facts about registered architectures for ``ppinfer models``.

Listing them from the registry means importing Paddle and building every model (parameter
counts come from ``paddle.LazyGuard``, shapes only): about 3 s for a fixed list. So the facts
are kept in ``catalog.json`` beside this file, written by ``python -m ppinfer.models.info``
and checked against the registry by the tests (``tests/test_models.py``): a family added or
changed without regenerating it fails there, not in a user's hands.
"""

from __future__ import annotations

import fnmatch
import json
import math
from importlib import resources
from typing import Any

CATALOG = "catalog.json"


def parameter_count(name: str, class_num: int = 1000) -> int:
    """Trainable parameters of ``name`` (BN running statistics excluded), like PaddleClas's."""
    from ppinfer.models.registry import get_model
    from ppinfer.runtime.paddle_import import import_paddle

    paddle = import_paddle()
    spec = get_model(name)
    with paddle.LazyGuard():
        net = spec.build(class_num=class_num)
    return sum(math.prod(p.shape) for p in net.parameters() if not p.stop_gradient)


def registry_rows() -> list[dict[str, Any]]:
    """Every registered architecture's row, computed (imports Paddle, builds each lazily)."""
    from ppinfer.models.registry import get_model, list_models

    rows = []
    for name in list_models():
        spec = get_model(name)
        pre = spec.preprocess
        rows.append({
            "name": name,
            "aliases": list(spec.aliases),
            "family": spec.family,
            "parameters": parameter_count(name),
            "input_shape": list(spec.input_shape),
            "preprocess": f"{pre.resize_short}→{pre.crop_size[0]} {pre.interpolation}",
        })
    return rows


def catalog_rows() -> list[dict[str, Any]]:
    """The rows kept in ``catalog.json`` (shipped with the package)."""
    text = resources.files("ppinfer.models").joinpath(CATALOG).read_text(encoding="utf-8")
    return json.loads(text)["models"]


def model_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """Rows whose name or an alias matches the fnmatch ``pattern`` (case-insensitive: 'swin*'
    finds SwinTransformer_*), sorted by name."""
    return [row for row in catalog_rows()
            if any(fnmatch.fnmatchcase(n.lower(), pattern.lower())
                   for n in (row["name"], *row["aliases"]))]


def catalog_text(rows: list[dict[str, Any]]) -> str:
    """``catalog.json``'s content for ``rows``: one model a line, so a diff shows what changed."""
    lines = ",\n".join(f"  {json.dumps(row, ensure_ascii=False)}" for row in rows)
    return f'{{"models": [\n{lines}\n]}}\n'


if __name__ == "__main__":  # regenerate: python -m ppinfer.models.info
    from pathlib import Path

    path = Path(__file__).with_name(CATALOG)
    path.write_text(catalog_text(registry_rows()), encoding="utf-8")
    print(f"wrote {path}")
