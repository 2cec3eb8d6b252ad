"""The int8 model against the float model at fp32, on the held-out images.

Both run on the engine the model was quantized for (the float model at fp32, the int8 model at
int8), so the difference is the quantization's alone, not the engines'. What is compared is what
``predict`` shows: top-1 agreement and the largest score difference
(:func:`ppinfer.engines.precision_check.compare_scores`).

A held-out image on which fp32's two best classes score within :data:`NEAR_TIE` of each other
is a near tie: any rounding, bf16's as much as int8's, may swap them. The warning counts them
apart, so a user can tell a model that int8 damages from images the model cannot decide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppinfer.config import RunConfig
from ppinfer.engines import create_engine
from ppinfer.engines.precision_check import Agreement, compare_scores
from ppinfer.modelfiles.source import ModelSource
from ppinfer.quantization.calibration import batches

AGREEMENT_TARGET = 0.97
NEAR_TIE = 0.05
BATCH = 8


@dataclass(frozen=True)
class Verification:
    agreement: Agreement
    near_ties: int  # of the images whose top-1 differs, those fp32 itself could not decide

    @property
    def meets_target(self) -> bool:
        return self.agreement.top1_rate >= AGREEMENT_TARGET

    def describe(self) -> str:
        a = self.agreement
        return (f"int8 vs fp32 on {a.images} held-out images: top-1 agrees on "
                f"{a.top1_agree}/{a.images} ({100 * a.top1_rate:.1f}%), largest score "
                f"difference {a.max_score_diff:.4f}.")

    def warning(self, engine: str) -> str | None:
        """What to try when agreement is below :data:`AGREEMENT_TARGET`; None when it is not."""
        if self.meets_target:
            return None
        a = self.agreement
        differ = a.images - a.top1_agree
        ties = ""
        if self.near_ties:
            which = ("the one that differs is a near tie" if differ == 1 else
                     f"all {differ} that differ are near ties" if self.near_ties == differ else
                     f"{self.near_ties} of the {differ} that differ are near ties")
            ties = (f"; {which} in fp32 (its top two scores within {NEAR_TIE:g}), which any "
                    "rounding may swap")
        others = ", ".join(e for e in ("analysis", "openvino", "onnxruntime") if e != engine)
        return (f"warning: int8 agrees with fp32 on {100 * a.top1_rate:.1f}% of the held-out "
                f"images, below {100 * AGREEMENT_TARGET:.0f}%{ties}. Try more calibration "
                "images, or images closer to those the model will see (--calib, --samples), "
                f"or another --engine ({others}).")

    def to_json_dict(self) -> dict:
        return {**self.agreement.to_json_dict(), "top1_rate": round(self.agreement.top1_rate, 4),
                "near_ties": self.near_ties}


def scores(engine_name: str, source: ModelSource, precision: str, batch: np.ndarray,
           cpu_threads: int | None = None) -> np.ndarray:
    """``source``'s [N, classes] scores on ``batch`` (probabilities, as predict shows them)."""
    config = RunConfig(device="cpu", precision=precision, cpu_threads=cpu_threads)
    engine = create_engine(engine_name, source, config)
    engine.ensure_built()
    return np.concatenate([engine.probabilities(engine.execute(part))
                           for part in batches(batch, BATCH)])


def verify(reference: np.ndarray, quantized: np.ndarray) -> Verification:
    """Compare int8 scores with the fp32 ``reference`` on the same images."""
    agreement = compare_scores(quantized, reference, "int8")
    if reference.shape[1] < 2:  # one class: nothing to tie with
        return Verification(agreement, 0)
    top_two = np.sort(reference, axis=1)[:, -2:]
    tie = (top_two[:, 1] - top_two[:, 0]) < NEAR_TIE
    differ = quantized.argmax(axis=1) != reference.argmax(axis=1)
    return Verification(agreement, int(np.sum(tie & differ)))
