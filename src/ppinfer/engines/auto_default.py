"""The engine ``predict``, ``bench`` and ``serve`` run when none is named, and the engines
``--engine auto`` measures (engines/auto.py)."""

from __future__ import annotations

import os

from ppinfer.modelfiles.source import ModelSource

REFERENCE = "analysis"  # what auto checks every engine's scores against, first in a tie
DEFAULT_ENGINE_ENV = "PPINFER_ENGINE"


def installed_candidates() -> list[str]:
    """Engines --engine auto measures that are installed here (analysis first)."""
    from ppinfer.engines.base import ENGINES, load_plugins

    load_plugins()
    return [name for name in sorted(ENGINES, key=lambda n: (n != REFERENCE, n))
            if ENGINES[name].auto_candidate and not ENGINES[name].needs_architecture
            and ENGINES[name].missing() is None]


def default_engine(source: ModelSource | None = None) -> str:
    """The engine ``predict``, ``bench`` and ``serve`` run when none is named: ``$PPINFER_ENGINE``
    if set, else ``auto`` (the fastest that agrees with analysis, measured once and cached)
    where another engine besides analysis is installed and the model is an exported one,
    else ``analysis``."""
    given = os.environ.get(DEFAULT_ENGINE_ENV, "").strip()
    if given:
        return given
    exported = source is None or (source.layout is not None
                                  and source.layout.is_inference_model)
    quantized = source is not None and source.quantized_for is not None  # auto takes its engine
    return "auto" if exported and (quantized or len(installed_candidates()) > 1) else REFERENCE
