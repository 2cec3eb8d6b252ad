"""Model output -> per-image results: probabilities, top-k, and the JSON line of each image."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ppinfer.errors import ConfigError, ModelFormatError

PROBABILITY_TOLERANCE = 1e-2
"""How far a row may be from summing to 1 and still count as probabilities, for the one model
whose program cannot be read (decided on its first batch; bf16 rows are off by about 1e-3)."""

SCORE_DECIMALS = 6


def printable(text: str) -> str:
    """``text`` made safe to write as UTF-8.

    A file name that is not valid UTF-8 reaches Python as lone surrogates (surrogateescape),
    which no UTF-8 stream accepts; its odd bytes are shown as ``\\xNN`` instead.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "replace")
        return raw.decode("utf-8", "backslashreplace")


def score_rows(outputs: np.ndarray, rows: int | None = None) -> np.ndarray:
    """A model's output for a batch of ``rows`` images as [rows, C] class scores, checked:
    finite floats, C >= 2 ([N, C, 1, 1] and, for one image, [C] are taken too). Anything else
    cannot be ranked into top-k classes, and reading it anyway gave class 0 for an argmax
    head, ``class_1752`` for a feature map and bare NaN for overflowing logits, with exit 0:
    :class:`ModelFormatError`, one sentence."""
    out = np.asarray(outputs)
    rows = (out.shape[0] if out.ndim else 1) if rows is None else rows
    shape = f"[{', '.join(str(d) for d in out.shape)}]"
    if out.ndim >= 2 and all(d == 1 for d in out.shape[2:]):
        scores = out.reshape(out.shape[0], out.shape[1])
    elif out.ndim == 1 and rows == 1:
        scores = out.reshape(1, -1)
    else:
        scores = None
    if scores is None or scores.shape[0] != rows or scores.shape[1] < 2 or not (
            np.issubdtype(out.dtype, np.floating)):
        raise ModelFormatError(
            f"The model's output for {rows} image{'s' if rows != 1 else ''} is {shape} "
            f"{out.dtype}, not class scores ([N, C] floats, C >= 2): "
            f"{_what_it_looks_like(out, rows)}; ppinfer runs image classifiers only.")
    finite = np.isfinite(scores)
    if not finite.all():
        image = int(np.argwhere(~finite)[0][0])
        bad = "NaN" if np.isnan(scores).any() else "an infinity"
        raise ModelFormatError(
            f"The model's scores hold {bad} (image {image} of the batch): its output overflows "
            "or is broken, so no class can be ranked; check the model at fp32 with "
            "--engine analysis.")
    return scores


def _what_it_looks_like(out: np.ndarray, rows: int) -> str:
    if np.issubdtype(out.dtype, np.integer) or out.dtype == np.bool_:
        return "it looks like class ids (an argmax head): export the model without it"
    if out.ndim >= 3:
        return "it looks like a feature map (a backbone without its classifier head)"
    if out.size == rows:
        return "it gives one value per image, and ranking needs one score per class"
    return "its shape does not give one row of scores per image"


def name_base64(text: str) -> str | None:
    """The exact bytes of a file name that is not valid UTF-8, in base64; None for any other
    name. ``file_name`` shows such a name's odd bytes as ``\\xNN``, which a name holding a
    backslash, an x and two hex digits shows too: this key tells them apart and gives the
    bytes (``base64.b64decode(v)``; ``base64 -d`` in a shell)."""
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")  # how the file system gave it to Python
    except UnicodeEncodeError:
        return None  # lone surrogates from Python code, not a file name's bytes
    return base64.b64encode(raw).decode("ascii")


def name_from_base64(value: str) -> str:
    """A file name as Python holds it, from :func:`name_base64`'s value."""
    return base64.b64decode(value).decode("utf-8", "surrogateescape")


def _as_rows(out: np.ndarray) -> np.ndarray:
    """[C] -> [1, C]; [N, C, 1, 1] -> [N, C]; [N, C] unchanged."""
    out = np.asarray(out)
    if out.ndim == 1:
        return out.reshape(1, -1)
    if out.ndim > 2 and all(dim == 1 for dim in out.shape[2:]):
        return out.reshape(out.shape[0], out.shape[1])
    if out.ndim != 2:
        raise ValueError(f"expected class scores shaped [N, C], got {out.shape}")
    return out


def is_probabilities(out: np.ndarray, tolerance: float = PROBABILITY_TOLERANCE) -> bool:
    """True when every row is non-negative and sums to 1 (within ``tolerance``)."""
    rows = _as_rows(out).astype(np.float64, copy=False)
    if rows.size == 0 or not np.all(np.isfinite(rows)):
        return False
    return bool(
        np.all(rows >= -tolerance) and np.allclose(rows.sum(axis=1), 1.0, rtol=0, atol=tolerance)
    )


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, shifted by the row maximum so large logits do not overflow."""
    rows = np.array(_as_rows(logits), dtype=np.float32)  # a copy: the ops below are in place
    rows -= rows.max(axis=1, keepdims=True)
    np.exp(rows, out=rows)
    rows /= rows.sum(axis=1, keepdims=True)
    return rows


def to_probabilities(out: np.ndarray, output: str) -> np.ndarray:
    """[N, C] float32 scores from a model's output, by what the model ends in (decided once
    from its program, see :mod:`ppinfer.modelfiles.program_output`): ``softmax`` and
    ``sigmoid`` outputs are already scores, ``logits`` get a softmax. Never judged from the
    values: a bf16 row of probabilities sums to 1 only within about 1e-3, and a second softmax
    flattens it."""
    if output in ("softmax", "sigmoid"):
        return _as_rows(out).astype(np.float32, copy=False)
    if output == "logits":
        return softmax(out)
    raise ValueError(f"unknown model output kind {output!r}")


def top_k(probs: np.ndarray, k: int) -> list[tuple[list[int], list[float]]]:
    """For each row, the ``k`` best (class ids, scores), best first; ``k`` is clipped to C.

    Ties are broken by the lower class id.
    """
    if k < 1:
        raise ConfigError(f"top-k must be at least 1, not {k}.")
    rows = _as_rows(probs)
    classes = rows.shape[1]
    k = min(k, classes)
    if k < classes:  # O(C) selection, then sort only the k picked
        picked = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    else:
        picked = np.broadcast_to(np.arange(classes), rows.shape)
    picked_scores = np.take_along_axis(rows, picked, axis=1)
    order = np.lexsort((picked, -picked_scores), axis=1)
    ids = np.take_along_axis(picked, order, axis=1)
    scores = np.take_along_axis(picked_scores, order, axis=1)
    return [
        ([int(c) for c in row_ids], [float(s) for s in row_scores])
        for row_ids, row_scores in zip(ids, scores)
    ]


@dataclass
class Result:
    """One image's outcome: the top-k classes, or an error sentence in their place."""

    file_name: str
    class_ids: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def failed(cls, file_name: str, error: str) -> Result:
        return cls(file_name=file_name, error=error)

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON line (docs/predict.md, "Output and exit status"): ``{file_name, class_ids,
        scores, label_names}``, or ``{file_name, error}``; ``file_name_base64`` after ``file_name``
        when the name is not UTF-8."""
        named = {"file_name": printable(self.file_name)}
        raw = name_base64(self.file_name)
        if raw is not None:  # not UTF-8: its bytes, so that \xNN is not read as text
            named["file_name_base64"] = raw
        if self.error is not None:
            return {**named, "error": printable(self.error)}
        return {
            **named,
            "class_ids": [int(c) for c in self.class_ids],
            "scores": [round(float(s), SCORE_DECIMALS) for s in self.scores],
            "label_names": [str(name) for name in self.label_names],
        }

    def to_dict(self) -> dict[str, Any]:
        """The Python API's name for :meth:`to_json_dict`: the JSON line as a dict."""
        return self.to_json_dict()

    def to_json_line(self) -> str:
        """One line of JSON (non-ASCII file names and labels kept readable)."""
        return json.dumps(self.to_json_dict(), ensure_ascii=False)


def results_from_probabilities(
    file_names: Sequence[str], probs: np.ndarray, k: int, labels: Sequence[str]
) -> list[Result]:
    """Results for a batch of scores (see :func:`to_probabilities`): top-k, label names."""
    probs = _as_rows(probs)
    if probs.shape[0] != len(file_names):
        raise ValueError(f"{len(file_names)} file names for {probs.shape[0]} output rows")
    results = []
    for name, (ids, scores) in zip(file_names, top_k(probs, k)):
        names = [labels[c] if 0 <= c < len(labels) else f"class_{c}" for c in ids]
        results.append(Result(name, ids, scores, names))
    return results
