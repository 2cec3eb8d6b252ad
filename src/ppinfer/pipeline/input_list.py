"""``--input-list FILE``: image paths one a line, for lists too long for a shell
(``--input-list -`` reads them from standard input: ``find photos -name '*.jpg' | ppinfer
predict --input-list -``).

Each line is one image file, taken as written (no globbing, no directory walk, nothing checked
up front): with millions of paths on shared storage, a stat per path in the driver would cost
more than the run. A path that cannot be read gets its error line in its place when its turn
comes, like any unreadable image. Blank lines are skipped, and so is a line whose first
character other than a space or tab is ``#`` (a comment: list ``./#name.jpg`` for a file whose
name starts with ``#``); relative paths are relative to the
current directory, as for ``-i``. Bytes that are not UTF-8 are kept (surrogateescape), so any
file name the file system allows can be listed.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable, Sequence

from ppinfer.errors import ConfigError
from ppinfer.pipeline.inputs import InputItem

MAX_LIST_BYTES = 4 << 30  # 4 GiB: tens of millions of paths


def read_input_list(path: str | os.PathLike[str]) -> list[str]:
    """The paths listed in ``path``, in order; ConfigError if the list itself cannot be read."""
    return [line for _, line in numbered_lines(path)]


def numbered_lines(path: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """(line number, path) for every path listed in ``path`` (``-``: standard input), blank
    lines and ``#`` comment lines skipped."""
    name = os.fspath(path)
    if name == "-":
        return _split(_read_stdin(), "standard input")
    try:
        info = os.stat(name)  # before open: opening a FIFO would block
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"The --input-list {name} is not a regular file.")
        if info.st_size > MAX_LIST_BYTES:
            raise ConfigError(f"The --input-list {name} is over {MAX_LIST_BYTES >> 30} GiB: "
                              "split it into several --input-list files.")
        with open(name, "rb") as fh:
            data = fh.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"Cannot read the --input-list {name}: {exc.strerror or exc}.") from None
    return _split(data, name)


def _read_stdin() -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None or sys.stdin.isatty():
        raise ConfigError("--input-list - reads paths from standard input, which is a terminal "
                          "here: pipe them in (find photos -name '*.jpg' | ppinfer predict "
                          "--input-list -).")
    data = stream.read(MAX_LIST_BYTES + 1)
    if len(data) > MAX_LIST_BYTES:
        raise ConfigError(f"The --input-list on standard input is over {MAX_LIST_BYTES >> 30} "
                          "GiB: split it into several --input-list files.")
    return data


def _split(data: bytes, name: str) -> list[tuple[int, str]]:
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark from some editors
        data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):  # every line would hold NUL bytes
        raise ConfigError(f"The --input-list {name} is UTF-16 text: save it as UTF-8 (one path "
                          "a line).")
    text = data.decode("utf-8", "surrogateescape")
    return [(number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), 1)
            if line.strip() and not line.lstrip(" \t").startswith("#")]


def merge_inputs(*groups: Iterable[InputItem]) -> list[InputItem]:
    """Concatenate item lists, repeats kept (one result per input given, as ``expand_inputs``)."""
    return [item for group in groups for item in group]


def items_from_lists(lists: Sequence[str | os.PathLike[str]]) -> list[InputItem]:
    """One item per listed path, over every ``--input-list`` file in turn. A line is one
    input whatever it holds: one that cannot name a file gets its error line (a NUL byte
    used to end the whole run, or the whole Ray run, with "embedded null byte")."""
    items = []
    for path in lists:
        for number, line in numbered_lines(path):
            items.append(InputItem(line, unnameable(line, number, path)))
    return items


def unnameable(line: str, number: int, listing: str | os.PathLike[str]) -> str | None:
    """Why ``line`` (line ``number`` of ``listing``) cannot name a file, or None. Any other
    byte can be part of a path on Linux (undecodable bytes are kept as they are,
    surrogateescape), so only NUL is refused here; a path the file system rejects (too
    long, ...) gets its error when its turn comes, like any unreadable path."""
    if "\0" in line:
        return (f"Line {number} of the --input-list {os.fspath(listing)} holds a NUL byte, "
                "which no file name can hold: fix that line.")
    return None
