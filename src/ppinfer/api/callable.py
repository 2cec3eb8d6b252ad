"""Modules that can be called: ``ppinfer.export(...)`` and ``ppinfer.bench(...)``.

``ppinfer.export`` and ``ppinfer.bench`` are modules (the library code) and, in the Python
API, functions. Python sets ``ppinfer.export`` to the module as soon as anything imports
``ppinfer.export.<name>``, so a plain function of that name in ``ppinfer/__init__.py`` would be
replaced behind the user's back. Instead the module itself is made callable: whatever was
imported first, ``ppinfer.export(...)`` calls :func:`ppinfer.api.exporting.export`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class CallableModule(types.ModuleType):
    """A module whose call runs the API function named by its ``__call_target__``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module_name, function_name = self.__dict__["__call_target__"]
        function = getattr(importlib.import_module(module_name), function_name)
        return function(*args, **kwargs)


def make_callable(module_name: str, target: str) -> None:
    """Make the module ``module_name`` callable as ``target`` (``"package.module:function"``)."""
    module = sys.modules[module_name]
    module.__call_target__ = tuple(target.split(":"))
    module.__class__ = CallableModule
