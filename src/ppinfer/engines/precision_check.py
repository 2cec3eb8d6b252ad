"""Reduced precision, verified: bf16 and int8 scores compared with fp32 on the same inputs.

``predict`` wraps its engine in :class:`CheckedEngine`: the first batch also runs through the
same engine at fp32, and the top-1 agreement and the largest score difference are reported,
with a warning when they are beyond :data:`SCORE_TOLERANCE`. ``bench`` and ``predict --engine
all`` use :func:`compare_scores` on their own runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ppinfer.engines.base import Engine

REDUCED_PRECISIONS = ("bf16", "int8", "fp16")
SCORE_TOLERANCE = 0.05
"""Largest score difference to fp32 a reduced-precision run may show without a warning (bf16
top-1 scores stay within about 0.04 of fp32 on real photos)."""


@dataclass(frozen=True)
class Agreement:
    """How a reduced-precision run's scores compare with fp32's on the same images."""

    precision: str
    images: int
    top1_agree: int
    max_score_diff: float

    @property
    def top1_rate(self) -> float:
        return self.top1_agree / self.images if self.images else 1.0

    def within(self, tolerance: float = SCORE_TOLERANCE) -> bool:
        return self.top1_agree == self.images and self.max_score_diff <= tolerance

    def describe(self) -> str:
        return (f"{self.precision} vs fp32 on {self.images} image"
                f"{'' if self.images == 1 else 's'}: top-1 agrees on {self.top1_agree}/"
                f"{self.images}, largest score difference {self.max_score_diff:.4f}")

    def to_json_dict(self) -> dict:
        return {"precision": self.precision, "images": self.images,
                "top1_agree": self.top1_agree, "max_score_diff": self.max_score_diff}


def compare_scores(probs: np.ndarray, reference: np.ndarray, precision: str) -> Agreement:
    """Top-1 agreement and largest absolute score difference of two [N, C] score arrays."""
    probs = np.asarray(probs, dtype=np.float32).reshape(len(reference), -1)
    reference = np.asarray(reference, dtype=np.float32).reshape(len(reference), -1)
    agree = int(np.sum(probs.argmax(axis=1) == reference.argmax(axis=1)))
    diff = float(np.max(np.abs(probs - reference))) if probs.size else 0.0
    return Agreement(precision, len(reference), agree, diff)


def fp32_twin(engine: Engine) -> Engine:
    """The same engine class on the same model at fp32 (not built yet)."""
    return type(engine)(engine.source, replace(engine.config, precision="fp32"))


class CheckedEngine:
    """An engine whose first batch is kept and, by :meth:`check`, run again at fp32 and
    compared (see :attr:`agreement`). The fp32 engine is built after the run, so the run's
    own timings hold only the reduced-precision engine.

    Everything else is the wrapped engine's: it is a drop-in for ``run_predictions``.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._first: tuple[np.ndarray, np.ndarray] | None = None
        self.agreement: Agreement | None = None
        self.problem: str | None = None  # why the fp32 comparison could not run

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def execute(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._engine.execute(batch)
        if self._first is None:
            self._first = (np.array(batch, dtype=np.float32), np.array(outputs))
        return outputs

    def predict(self, images, file_names):
        """All four steps, through :meth:`execute` (so the first batch is kept)."""
        self._engine.ensure_built()
        return self._engine.analyze(self.execute(self._engine.organize(images)), file_names)

    def check(self) -> Agreement | None:
        """Run the first batch at fp32 and compare; None when nothing ran."""
        from ppinfer.errors import PPInferError

        if self._first is None or self.agreement is not None:
            return self.agreement
        batch, outputs = self._first
        try:
            twin = fp32_twin(self._engine)
            twin.ensure_built()
            reference = twin.probabilities(twin.execute(batch))
        except PPInferError as exc:
            self.problem = str(exc)
            return None
        probs = self._engine.probabilities(outputs)
        self.agreement = compare_scores(probs, reference, self._engine.config.precision)
        return self.agreement


def agreement_message(checked: CheckedEngine, tolerance: float = SCORE_TOLERANCE) -> str | None:
    """One line for stderr: the first batch's agreement, a warning when beyond tolerance."""
    engine = checked._engine
    if engine.source.quantized_for or (getattr(engine, "quantized_as_int8", False)
                                       and engine.source.layout is not None):
        from ppinfer.modelfiles.formats import is_quantized

        # no fp32 of it here: its engine runs int8 ops, or (analysis) simulates them in fp32
        if engine.source.quantized_for or is_quantized(engine.source.layout):
            return ("int8 model: its agreement with fp32 was measured when it was quantized "
                    "(inference.yml, ppinfer.quantization).")
    checked.check()
    if checked.problem:
        return f"warning: could not compare with fp32 ({checked.problem})"
    a = checked.agreement
    if a is None:
        return None
    if a.within(tolerance):
        return f"{a.describe()} (first batch; tolerance {tolerance:g})."
    return (f"warning: {a.describe()} on the first batch, beyond the tolerance of "
            f"{tolerance:g}: these scores are not fp32's; use --precision fp32 where they "
            "matter.")
