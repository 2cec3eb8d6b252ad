"""Declarative key tables: how one naming's state-dict keys become the model's structured keys.

A table is a tuple of ``(pattern, template)`` rows, tried in order; the first pattern that
matches the whole key gives the new key. In a pattern,

- ``{tail}`` matches the rest of the key, dots included (``bn._mean``);
- any other ``{field}`` matches one dot-free part; when ``field`` is in the lookups, the part is
  translated through it (a sequence is indexed by the part read as an integer, a mapping by the
  part itself) and a part the lookup does not hold makes the row not apply.

So ``("blocks.{block}.short.{tail}", "blocks.{block}.branch1.{tail}")`` with the lookup
``block=("res2a", "res2b", ...)`` renames ``blocks.1.short.conv.weight`` to
``blocks.res2b.branch1.conv.weight``. The lookups come from the architecture's own description
(its stage depths, its block names), never from the order of a file's keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from ppinfer.checkpoints.namings import Naming

_FIELD = re.compile(r"\{(\w+)\}")

Lookup = Sequence[str] | Mapping[str, str]
KeyTable = tuple[tuple[str, str], ...]


def _compile(pattern: str) -> re.Pattern[str]:
    parts, at = [], 0
    for match in _FIELD.finditer(pattern):
        parts.append(re.escape(pattern[at:match.start()]))
        name = match.group(1)
        parts.append(f"(?P<{name}>.+)" if name == "tail" else f"(?P<{name}>[^.]+?)")
        at = match.end()
    parts.append(re.escape(pattern[at:]))
    return re.compile("".join(parts))


def _look_up(lookup: Lookup, part: str) -> str | None:
    if isinstance(lookup, Mapping):
        return lookup.get(part)
    if not part.isdigit() or int(part) >= len(lookup):
        return None
    return lookup[int(part)]


@dataclass(frozen=True, eq=False)
class KeyMap:
    """A table bound to one architecture's lookups; ``keymap(key)`` is the renamed key or None."""

    table: KeyTable
    lookups: Mapping[str, Lookup] = field(default_factory=dict)

    @cached_property
    def _rows(self) -> list[tuple[re.Pattern[str], str]]:
        return [(_compile(pattern), template) for pattern, template in self.table]

    def __call__(self, key: str) -> str | None:
        for pattern, template in self._rows:
            match = pattern.fullmatch(key)
            if match is None:
                continue
            parts = {}
            for name, part in match.groupdict().items():
                parts[name] = _look_up(self.lookups[name], part) if name in self.lookups else part
            if None in parts.values():
                continue
            return template.format(**parts)
        return None


def table_naming(label: str, table: KeyTable, **lookups: Lookup) -> Naming:
    """A :class:`Naming` called ``label`` that renames keys by ``table`` with ``lookups``."""
    return Naming(label, KeyMap(table, lookups))
