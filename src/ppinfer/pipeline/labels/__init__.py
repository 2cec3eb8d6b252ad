"""Class names: a label file, the ImageNet-1k list shipped here, or ``class_N`` placeholders."""

from __future__ import annotations

import functools
import re
from importlib import resources

from ppinfer.errors import ConfigError

IMAGENET_CLASS_NUM = 1000

_ID_PREFIX = re.compile(r"(\d+)\s+(\S.*)")


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names; index i is class i (PaddleClas's order)."""
    text = resources.files(__name__).joinpath("imagenet1k.txt").read_text(encoding="utf-8")
    return tuple(parse_label_lines(text.splitlines()))


def parse_label_lines(lines: list[str]) -> list[str]:
    """One label per line; or PaddleClas's ``"<id> <name>"`` lines when every line has an id
    prefix and the ids are exactly 0..n-1 (in any order). Trailing blank lines are ignored."""
    lines = [line.rstrip("\r\n") for line in lines]
    while lines and not lines[-1].strip():
        lines.pop()
    matches = [_ID_PREFIX.fullmatch(line.strip()) for line in lines]
    if lines and all(matches):
        by_id = {int(m.group(1)): m.group(2).strip() for m in matches if m}
        if sorted(by_id) == list(range(len(lines))):
            return [by_id[i] for i in range(len(lines))]
    return [line.strip() for line in lines]


def load_labels(path: str | None, class_num: int) -> list[str]:
    """Labels for a model with ``class_num`` classes.

    From ``path`` when given (its length must equal ``class_num``); else ImageNet-1k for a
    1000-class model; else ``class_0``, ``class_1``, ...
    """
    if path is None:
        if class_num == IMAGENET_CLASS_NUM:
            return list(imagenet_labels())
        return [f"class_{i}" for i in range(class_num)]
    from ppinfer.io.safe_io import CARD_MAX_BYTES, read_regular_file

    data = read_regular_file(path, CARD_MAX_BYTES, ConfigError, what="label file ")
    try:
        labels = parse_label_lines(data.decode("utf-8-sig").splitlines())
    except UnicodeDecodeError:
        raise ConfigError(f"Cannot read label file {path}: it is not UTF-8 text.") from None
    if len(labels) != class_num:
        raise ConfigError(
            f"Label file {path} has {len(labels)} labels but the model has {class_num} classes: "
            "give one label per class, one a line."
        )
    return labels
