"""Which files to run on: ``-i`` specs (files, directories, globs) -> an ordered list of paths.

A spec that yields nothing becomes an item with an error sentence instead of stopping the run:
the CLI reports it in the image's place, like an unreadable image.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One image to run on (``error`` None), or a spec that failed (``error`` says why)."""

    path: str
    error: str | None = None


def is_image_name(name: str) -> bool:
    """True for the image extensions kept from directories and globs (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def expand_inputs(specs: Sequence[str | os.PathLike[str]]) -> list[InputItem]:
    """Expand files, directories (recursive) and globs (``*``, ``?``, ``[...]``, ``**``).

    A file named outright is kept whatever its extension; directories and globs keep image
    files only, in one sorted order (:func:`path_order`: ``photos/`` and ``'photos/**/*'``
    list the same files in the same order). Symlinks are followed, each directory walked once
    (so links that loop are harmless); one glob names each file once. A file given twice, or
    by two specs, runs twice: one result per input given, in order, so results line up with
    what was asked (dropping repeats silently shifted every later result against its input).
    """
    return [item for spec in specs for item in _expand_one(os.fspath(spec))]


def _expand_one(spec: str) -> list[InputItem]:
    if spec == "-" and not os.path.lexists(spec):
        return [InputItem(spec, "- (standard input) is not read as an image: pipe file names "
                                "with --input-list -, or save the image to a file.")]
    if os.path.isdir(spec):
        return _from_directory(spec)
    if os.path.lexists(spec):  # a file, a dangling link or a special file: loading will tell
        return [InputItem(spec)]
    if _GLOB_CHARS.intersection(spec):
        return _from_glob(spec)
    return [InputItem(spec, f"{spec} does not exist: check the path.")]


def path_order(path: str, *, folder: bool = False) -> tuple[tuple[int, str], ...]:
    """Sort key for the order a directory walk lists files in: by name, a folder's own files
    before its subfolders', component by component. Glob matches are sorted with it too, so
    ``photos/`` and ``'photos/**/*'`` list the same files in the same order (plain string
    order would not: it puts ``photos/a/x.jpg`` before ``photos/b.jpg``, and ``a.b/`` before
    ``a/``)."""
    *parents, name = os.path.normpath(path).split(os.sep)
    return (*((1, parent) for parent in parents), (int(folder), name))


def _from_directory(root: str, *, empty_is_error: bool = True) -> list[InputItem]:
    problems: list[InputItem] = []  # unreadable subdirectories, reported after the images
    found = [InputItem(path) for path in _walk_images(root, problems)]  # in path_order
    if not found and not problems and empty_is_error:
        return [InputItem(root, f"Directory {root} holds no images ({_extension_list()}).")]
    return found + problems


def _walk_images(root: str, problems: list[InputItem]) -> Iterator[str]:
    visited: set[tuple[int, int]] = set()

    def on_error(exc: OSError) -> None:
        where = exc.filename or root
        problems.append(InputItem(where, f"Cannot read directory {where}: {exc.strerror}"))

    for directory, subdirs, files in os.walk(root, onerror=on_error, followlinks=True):
        try:
            stat = os.stat(directory)
        except OSError:
            subdirs[:] = []
            continue
        identity = (stat.st_dev, stat.st_ino)
        if identity in visited:  # reached again through a symlink (a loop or a second link)
            subdirs[:] = []
            continue
        visited.add(identity)
        subdirs.sort()
        for name in sorted(files):
            if is_image_name(name):
                yield os.path.join(directory, name)


def _from_glob(pattern: str) -> list[InputItem]:
    items: list[InputItem] = []
    matches = glob.glob(pattern, recursive=True)
    for match in sorted(matches, key=lambda m: path_order(m, folder=os.path.isdir(m))):
        if os.path.isdir(match):
            items.extend(_from_directory(match, empty_is_error=False))
        elif is_image_name(match):
            items.append(InputItem(match))
    if not items:
        return [InputItem(pattern, f"No images ({_extension_list()}) match {pattern}.")]
    # one glob names each file once, though ** matches it and its folders (walked) alike
    seen: set[str] = set()
    return [item for item in items
            if item.error is not None or not (item.path in seen or seen.add(item.path))]


def _extension_list() -> str:
    return " ".join(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
