"""Why an optional package cannot be imported, for ``pytest.mark.skipif`` reasons."""

from __future__ import annotations

import importlib


def missing(*modules: str, what: str, extra: str) -> str | None:
    """None when every module imports, else the reason to skip: what is missing, how to get it."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as exc:
        return f"{what} is not installed ({exc}): pip install 'ppinfer[{extra}]'"
    return None
