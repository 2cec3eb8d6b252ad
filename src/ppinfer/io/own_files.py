"""Files ppinfer writes for itself and reads back: caches, indexes, conversion records.

Anyone who can write under ``PPINFER_HOME`` (another tool, a full disk, an editor, an
attacker) can leave anything there, so what is read back is as untrusted as a user's file:

- :func:`read_json` reads with bounds (size, nesting depth) and refuses NaN, infinities and
  numbers too large for a float; any failure means "absent", never an exception, so the
  caller makes the file again instead of failing on every later run.
- The checkers (:func:`record`, :func:`finite`, :func:`count`, :func:`text`, ...) say whether
  a parsed document has the schema its writer gives it; callers treat anything else as absent.
- :func:`write_json` writes a new file beside the target, created exclusively and without
  following links (``O_EXCL | O_NOFOLLOW``, a random name), and renames it into place: a
  symlink planted under the temporary name cannot redirect the write, and a reader sees the
  old file or the new one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ppinfer.errors import PPInferError
from ppinfer.io.safe_io import read_regular_file

JSON_MAX_BYTES = 1 << 20
JSON_MAX_DEPTH = 16  # ppinfer's own files nest 4 levels at most
TEXT_MAX = 1000  # characters in one string field (a reason, a path)

Check = Callable[[Any], bool]


class _Unreadable(PPInferError):
    """Raised by safe_io inside :func:`read_json`, which turns it into None."""


def read_json(path: str | os.PathLike[str], max_bytes: int = JSON_MAX_BYTES,
              max_depth: int = JSON_MAX_DEPTH) -> Any:
    """The JSON document in ``path``, or None when it is missing, unreadable, not a regular
    file, over ``max_bytes``, not UTF-8, nested deeper than ``max_depth``, or holds NaN, an
    infinity or a number no float can hold."""
    try:
        data = read_regular_file(path, max_bytes, _Unreadable)
        return parse_json(data.decode("utf-8"), max_depth)
    except (_Unreadable, ValueError):  # UnicodeDecodeError and JSONDecodeError included
        return None


def parse_json(text: str, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """``json.loads`` with nesting bounded before parsing (200,000 brackets would otherwise
    recurse past Python's stack) and only finite numbers. Raises ValueError."""
    if _depth(text) > max_depth:
        raise ValueError(f"nested deeper than {max_depth} levels")
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def _depth(text: str) -> int:
    """The deepest bracket nesting outside strings; stops counting past the first level too
    deep, so a megabyte of ``[`` costs one pass over the text."""
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(_STRINGS.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > 64:
                break
    return deepest


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number ppinfer writes")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):  # 1e999
        raise ValueError(f"{literal} is not a finite number")
    return value


# -- schema checks: each returns True when the value has the expected kind ---------------------


def finite(value: Any, *, minimum: float = -math.inf) -> bool:
    """A finite int or float (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        number = float(value)  # an int past float's range raises
    except OverflowError:
        return False
    return math.isfinite(number) and number >= minimum


def count(value: Any, maximum: int = 1 << 31) -> bool:
    """A non-negative int (not a bool) up to ``maximum``."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= maximum


def text(value: Any, max_chars: int = TEXT_MAX) -> bool:
    """A printable string (no control characters: it may be shown on a terminal) of at most
    ``max_chars`` characters."""
    return (isinstance(value, str) and len(value) <= max_chars
            and not any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value))


def hex_digest(value: Any, digits: int) -> bool:
    """Exactly ``digits`` lower-case hex digits: safe to use as a file or folder name."""
    return isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{digits}}}", value) is not None


def optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def list_of(check: Check, max_items: int = 1000) -> Check:
    return lambda value: (isinstance(value, list) and len(value) <= max_items
                          and all(check(v) for v in value))


def record(fields: Mapping[str, Check], required: frozenset[str] | set[str] = frozenset()
           ) -> Check:
    """A dict whose keys are all in ``fields`` (those in ``required`` present), each value
    passing its check."""
    def check(value: Any) -> bool:
        return (isinstance(value, dict) and all(k in value for k in required)
                and all(k in fields and fields[k](v) for k, v in value.items()))
    return check


# -- writing -------------------------------------------------------------------------------------


def write_json(path: Path, doc: Any) -> None:
    """Write ``doc`` to ``path`` atomically through an exclusively created temporary file (see
    the module's docstring); the folder is created if needed. Raises OSError."""
    write_bytes(path, (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """``data`` into ``path``, atomically, never through a link (see :func:`write_json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp")
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))
    fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # replaces a link at ``path`` itself, never its target
    except BaseException:  # a full disk: no half-written file left beside the target
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
