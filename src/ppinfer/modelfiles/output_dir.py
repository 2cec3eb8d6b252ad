"""The ``-o`` directory a command writes a model into, checked before any work.

``export`` and ``quantize`` both publish a model directory (``ppinfer.io.publish``); both refuse
the same outputs in the same words.
"""

from __future__ import annotations

import os
from pathlib import Path

from ppinfer.errors import ExportError, ModelFormatError
from ppinfer.modelfiles.formats import detect_directory


def check_output_dir(output: Path, force: bool, command: str = "export") -> None:
    """Refuse, before any work, an output ``command`` may not write or replace.

    ``--force`` replaces a directory only when it is empty or holds a model (ppinfer deletes
    only what it or Paddle wrote); the filesystem root, the current directory and its parents
    are never replaced.
    """
    resolved = output.resolve()
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor) or resolved == cwd or resolved in cwd.parents:
        what = ("the filesystem root" if resolved == Path(resolved.anchor)
                else "the current directory or one of its parents")
        raise ExportError(f"-o {output} is {what}: {command} into a folder of its own, such as "
                          "-o ./model.")
    if not os.path.lexists(output):
        return
    if not output.is_dir():
        raise ExportError(f"{output} is a file: choose a directory for -o/--output.")
    try:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in output.iterdir())
    except OSError as exc:
        raise ExportError(f"Cannot read the output directory {output}: {exc.strerror}.") from None
    if not entries:
        return
    if not force:
        raise ExportError(f"Output directory {output} is not empty: pass --force to replace it.")
    try:
        holds_model = detect_directory(output).is_inference_model
    except ModelFormatError:
        holds_model = False
    if not holds_model:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5
                                          else "")
        raise ExportError(
            f"Output directory {output} holds no model, so --force will not replace it: it "
            f"would delete {shown}. Choose another -o, or empty it yourself."
        )
