"""The package's public surface: ``dir(ppinfer)`` is ``__all__``, ``help()`` of the API's
functions shows them (``ppinfer.bench`` and ``ppinfer.export`` are also modules), and every
``pip install 'ppinfer[X]'`` hint names an extra pyproject.toml declares."""

from __future__ import annotations

import inspect
import pydoc
import re
from pathlib import Path

import pytest
import tomllib

import ppinfer

ROOT = Path(__file__).resolve().parents[1]


def test_dir_of_ppinfer_is_its_all_and_shows_no_helper_imports():
    import ppinfer.bench.run  # noqa: F401  (the submodules loaded change nothing)

    assert dir(ppinfer) == sorted(ppinfer.__all__)
    for helper in ("Any", "sys", "types", "importlib", "CallableModule", "make_callable"):
        assert helper not in dir(ppinfer), helper
        assert not hasattr(ppinfer, helper), helper


@pytest.mark.parametrize("name, target, parameter", [
    ("bench", "ppinfer.api.benchmarking:bench", "batch_size"),
    ("export", "ppinfer.api.exporting:export", "checkpoint"),
])
def test_help_of_an_api_function_that_is_also_a_module_shows_its_signature_and_docstring(
        name, target, parameter):
    import importlib

    module_name, function_name = target.split(":")
    function = getattr(importlib.import_module(module_name), function_name)
    api = getattr(ppinfer, name)
    assert parameter in inspect.signature(api).parameters
    text = pydoc.render_doc(api, renderer=pydoc.plaintext)
    assert f"ppinfer.{name}{inspect.signature(api)}" in text
    first = inspect.getdoc(function).splitlines()[0]
    assert first in text, text[:600]
    assert inspect.getdoc(api).startswith(f"ppinfer.{name}(")


@pytest.mark.parametrize("name", ["load", "serve", "quantize"])
def test_help_of_the_other_api_functions_is_the_function_s_own(name):
    api = getattr(ppinfer, name)
    assert inspect.isfunction(api)
    assert inspect.getdoc(api).splitlines()[0] in pydoc.render_doc(api, renderer=pydoc.plaintext)


def test_every_install_hint_names_an_extra_pyproject_declares():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                   ["optional-dependencies"])
    named = {}
    for path in (ROOT / "src" / "ppinfer").rglob("*.py"):
        for group in re.findall(r"ppinfer\[([^\]]*)\]", path.read_text()):
            for extra in group.split(","):
                named.setdefault(extra.strip(), path.name)
    assert named, "no hints found: the pattern no longer matches them"
    unknown = {extra: where for extra, where in named.items() if extra not in declared}
    assert not unknown, f"hints name extras pyproject.toml lacks: {unknown}"
