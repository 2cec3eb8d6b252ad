"""Reading files ppinfer does not trust: regular files only, sizes bounded, paths contained.

One mechanism for every untrusted file (images, programs, parameters, cards, label maps):

- :func:`read_regular_file` ``stat``\\ s before it opens, so a FIFO, a device or a directory is
  refused instead of blocking ``open()`` forever; it opens with ``O_NONBLOCK`` and checks the
  open descriptor again, so a file swapped for a FIFO between the two is refused too; and it
  refuses a file over ``max_bytes`` before reading a byte (a sparse 30 GB file costs nothing).
- :func:`load_yaml` parses YAML with aliases refused and nesting bounded, so a few hundred
  bytes cannot expand to gigabytes or recurse past Python's stack.
- :func:`contained_path` resolves a path a model directory names (symlinks too) and refuses it
  unless it stays inside that directory.

Errors are raised as the caller's exception class, so an image gets a per-image
:class:`~ppinfer.errors.ImageError` and a card a :class:`~ppinfer.errors.ModelFormatError`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ppinfer.errors import PPInferError

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)

MIB = 1 << 20
CARD_MAX_BYTES = 4 * MIB
"""inference.yml files and label maps: PaddleX's largest cards are a few hundred kilobytes."""
PROGRAM_MAX_BYTES = 1 << 31
"""Program files (model, *.pdmodel, *.json): real ones are a few megabytes."""
CHECKPOINT_MAX_BYTES = 8 << 30
"""All the tensors of one checkpoint together (the largest PaddleClas models are near 2.5 GB)."""
YAML_MAX_DEPTH = 64


def file_kind(mode: int) -> str:
    """'a FIFO (named pipe)', 'a directory', ... for a ``st_mode`` that is not a regular file."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_regular_file(path: str | os.PathLike[str], error: type[PPInferError],
                       what: str = "") -> os.stat_result:
    """``stat`` ``path`` (following links) and raise ``error`` unless it is a regular file."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except OSError as exc:
        raise error(f"Cannot read {what}{_spaced(name)}: {exc.strerror or exc}"
                    f"{_without_spaces(name, exc)}.") from None
    except ValueError:  # "embedded null byte": no file has such a name
        raise error(f"{_subject(what, name)} cannot name a file: it holds a NUL byte.") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{_subject(what, name)} is {file_kind(info.st_mode)}, not a regular "
                    "file.")
    return info


def _spaced(name: str) -> str:
    """``name``, quoted when it begins or ends in white space (else the message hides it)."""
    return f"'{name}'" if name != name.strip() else name


def _without_spaces(name: str, exc: OSError) -> str:
    """For a missing name with white space around it that exists without: say so."""
    stripped = name.strip()
    if (isinstance(exc, FileNotFoundError) and stripped != name and stripped
            and os.path.exists(stripped)):
        return f" ('{stripped}', without the spaces around it, exists)"
    return ""


def read_regular_file(path: str | os.PathLike[str], max_bytes: int, error: type[PPInferError],
                      *, what: str = "", limit_hint: str = "") -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Raises ``error`` (one sentence naming the file) when the path is missing, unreadable, not a
    regular file, or larger than ``max_bytes``; nothing is read in those cases. ``what`` is put
    before the name, in lower case ("label file "), ``limit_hint`` after the size sentence
    ("change it with --max-image-bytes").
    """
    name = os.fspath(path)
    info = check_regular_file(name, error, what)
    _check_size(name, info.st_size, max_bytes, error, what, limit_hint)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"Cannot read {what}{name}: {exc.strerror or exc}.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped for something else since the stat
            raise error(f"{_subject(what, name)} is {file_kind(info.st_mode)}, not a regular "
                        "file.")
        _check_size(name, info.st_size, max_bytes, error, what, limit_hint)
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 16 * MIB))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise error(f"Cannot read {what}{name}: {exc.strerror or exc}.") from None
    except MemoryError:
        raise error(f"{_subject(what, name)} is too large to read in the available "
                    "memory.") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    _check_size(name, len(data), max_bytes, error, what, limit_hint)  # grew while read
    return data


def _check_size(name: str, size: int, max_bytes: int, error: type[PPInferError], what: str,
                hint: str) -> None:
    if size > max_bytes:
        raise error(f"{_subject(what, name)} is {_human(size)}, over the limit of "
                    f"{_human(max_bytes)}{': ' + hint if hint else ''}.")


def _subject(what: str, name: str) -> str:
    """A sentence's start: ``what`` capitalised ("Label file "), the path exactly as given (a
    relative ``photos/a.jpg`` is not ``Photos/a.jpg``, another file on a case-sensitive disk)."""
    return what[:1].upper() + what[1:] + name


def _human(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def contained_path(root: str | os.PathLike[str], named: str, error: type[PPInferError],
                   what: str) -> Path:
    """``named`` (relative to ``root``) resolved with its symlinks; ``error`` unless it stays
    inside ``root``. Absolute paths and ``..`` that leave the directory are refused."""
    base = Path(root).resolve()
    target = (base / named).resolve()  # an absolute ``named`` replaces base: caught below
    if target != base and base not in target.parents:
        raise error(f"{what} names {named!r}, which is outside the model directory {root}: "
                    "a model directory must hold the files it names.")
    return target


def short(text: object, limit: int = 160) -> str:
    """One short line of ``text``: the first line, cut to ``limit`` characters."""
    line = (str(text).strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


# -- YAML ------------------------------------------------------------------------------------


class YamlRefused(ValueError):
    """A YAML document uses a feature ppinfer refuses (aliases, deep nesting)."""


def _bounded_loader() -> type:
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """SafeLoader without aliases (but to scalars, when asked) and with bounded nesting: a
        400-byte alias bomb or a 10,000-deep list is refused while composing, before anything
        is built."""

        scalar_aliases = False

        def fetch_flow_collection_start(self, token_class):  # noqa: ANN001, ANN201
            # Refused while scanning: the scanner's work grows with the square of the depth.
            if self.flow_level >= YAML_MAX_DEPTH:
                raise YamlRefused(f"it nests deeper than {YAML_MAX_DEPTH} levels")
            return super().fetch_flow_collection_start(token_class)

        def compose_node(self, parent, index):  # noqa: ANN001, ANN201
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                target = self.anchors.get(event.anchor)
                if not (self.scalar_aliases and isinstance(target, yaml.ScalarNode)):
                    raise YamlRefused(_alias_refused(event, self.scalar_aliases))
            self._depth = getattr(self, "_depth", 0) + 1
            try:
                if self._depth > YAML_MAX_DEPTH:
                    raise YamlRefused(f"it nests deeper than {YAML_MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return BoundedLoader


def _alias_refused(event, scalar_aliases: bool) -> str:
    what = "an alias to a list or mapping" if scalar_aliases else "a YAML alias"
    return (f"it uses {what} (*{event.anchor}, line {event.start_mark.line + 1}), which "
            "ppinfer does not expand")


def load_yaml(text: str, *, scalar_aliases: bool = False) -> Any:
    """Parse one YAML document safely (no tags beyond SafeLoader's, no aliases, bounded depth).

    ``scalar_aliases`` lets an alias name an anchored scalar, as PaddleClas's training configs
    write (``class_num: &class_num 1000`` ... ``class_num: *class_num``): it adds no bytes to
    the parsed document (the value object is shared), unlike an alias to a list or mapping.

    With PyYAML's libyaml binding (its wheels have it) the document is checked on libyaml's
    event stream, then built by ``CSafeLoader``: about 8 times faster than the Python parser
    on a card with 1,000 labels (5 ms against 38 ms, part of every cold start). Raises
    :class:`YamlRefused` or ``yaml.YAMLError``.
    """
    import yaml

    if getattr(yaml, "__with_libyaml__", False):
        try:
            _check_events(yaml.parse(text, Loader=yaml.CSafeLoader), yaml, scalar_aliases)
        except yaml.YAMLError as exc:  # libyaml's own bound (1,000 levels) came first
            if "nesting depth" in str(exc):
                raise YamlRefused(f"it nests deeper than {YAML_MAX_DEPTH} levels") from None
            raise
        return yaml.load(text, Loader=yaml.CSafeLoader)  # noqa: S506 (CSafeLoader is safe)
    return load_yaml_python(text, scalar_aliases=scalar_aliases)


def load_yaml_python(text: str, *, scalar_aliases: bool = False) -> Any:
    """:func:`load_yaml` with PyYAML's Python parser, checking while it composes."""
    loader = _bounded_loader()(text)
    loader.scalar_aliases = scalar_aliases
    try:
        return loader.get_single_data()
    except RecursionError:
        raise YamlRefused(f"it nests deeper than {YAML_MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def _check_events(events, yaml, scalar_aliases: bool = False) -> None:
    """Refuse aliases (but to scalars, with ``scalar_aliases``) and nesting deeper than
    YAML_MAX_DEPTH, reading events as they come: a refused document is not parsed further."""
    depth = 0
    scalar_anchors: set[str] = set()
    for event in events:
        if isinstance(event, yaml.AliasEvent) and not (scalar_aliases
                                                        and event.anchor in scalar_anchors):
            raise YamlRefused(_alias_refused(event, scalar_aliases))
        if isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            scalar_anchors.add(event.anchor)
        elif isinstance(event, yaml.CollectionStartEvent) and event.anchor is not None:
            scalar_anchors.discard(event.anchor)  # re-anchored to a collection
        if isinstance(event, (yaml.CollectionStartEvent, yaml.ScalarEvent)):
            if depth + 1 > YAML_MAX_DEPTH:
                raise YamlRefused(f"it nests deeper than {YAML_MAX_DEPTH} levels")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
