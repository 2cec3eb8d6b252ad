"""The photo shipped in the package: the quick start's input, and export's self-check image."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_image_path() -> Path:
    """The photo shipped in the package (data/README.md says whose and under which licence)."""
    return Path(str(resources.files("ppinfer") / "data" / "chelsea.jpg"))
