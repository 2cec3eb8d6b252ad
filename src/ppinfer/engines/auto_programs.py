"""Which program ``--engine auto`` runs when a model directory holds two of one model.

ppinfer's exports on Paddle 3 write the legacy ``inference.pdmodel`` beside the PIR
``inference.json``, over one parameters file. Without ``auto``, the legacy one runs
(``RUN_PREFERENCE``): Paddle Inference ran it as fast or faster on most rows measured and
loads it sooner, and OpenVINO reads only it. But which program Paddle Inference runs faster
depends on the model and the machine, so ``auto`` times ``analysis`` on the other program too,
as one more candidate, and the choice records the program that won (``Choice.program``).
Only ``analysis`` is measured twice: OpenVINO reads no ``.json``, and ONNX Runtime runs the
same converted graph from either.
"""

from __future__ import annotations

import dataclasses

from ppinfer.modelfiles.source import ModelSource

#: engines measured on each program a directory holds
ON_EITHER_PROGRAM = ("analysis",)


def label(engine: str, program: str | None) -> str:
    """How a candidate is named in the choice: ``analysis``, or ``analysis:pir`` when it ran
    the program that is not the default one."""
    return engine if program is None else f"{engine}:{program}"


def other_program(source: ModelSource) -> ModelSource | None:
    """``source`` on the directory's other program over the same parameters file, or None
    (one program only, or a Paddle that cannot run the other)."""
    from ppinfer.modelfiles.formats import detect_directory
    from ppinfer.runtime.paddle_env import paddle_env

    layout = source.layout
    if layout is None or layout.kind not in ("pir", "legacy") or layout.params is None:
        return None
    other = "legacy" if layout.kind == "pir" else "pir"
    if other == "pir" and not paddle_env().can_run_pir:
        return None
    try:
        found = detect_directory(layout.root, prefer=other)
    except Exception:  # noqa: BLE001 - the directory changed under us: no alternative
        return None
    if found.kind != other or found.params != layout.params:
        return None
    return dataclasses.replace(source, layout=found)


def on_program(source: ModelSource, program: str | None) -> ModelSource:
    """``source`` on ``program`` (``None``: as it is)."""
    if program is None or source.layout is None or source.layout.ir == program:
        return source
    return other_program(source) or source
