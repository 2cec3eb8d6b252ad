"""ppinfer: PaddlePaddle image classification from checkpoint to fast, correct predictions.

The Python API (docs/python-api.md)::

    import ppinfer
    with ppinfer.load() as predictor:              # the built-in model
        for result in predictor.predict("photos/"):
            print(result.file_name, result.label_names[0], result.scores[0])

``import ppinfer`` is light: the API is loaded on first use (PEP 562), and Paddle only when a
model is loaded, exported or benchmarked.
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
import types as _types
from typing import Any as _Any

from ppinfer import errors as _errors

__version__ = "0.1.0"

# Every error a user can cause, by name: ppinfer.PPInferError, ppinfer.ConfigError, ...
_ERRORS = {name: value for name, value in vars(_errors).items()
           if isinstance(value, type) and issubclass(value, _errors.PPInferError)}
globals().update(_ERRORS)

# name -> module that defines it, imported on first access
_LAZY = {
    "load": "ppinfer.api.predictor",
    "Predictor": "ppinfer.api.predictor",
    "Result": "ppinfer.pipeline.postprocess",
    "ExportResult": "ppinfer.export",
    "ExportNote": "ppinfer.api.exporting",
    "sample_image_path": "ppinfer.pipeline.sample",
    "serve": "ppinfer.serving.server",
    "quantize": "ppinfer.api.quantizing",
}
# modules that are also the API's functions (CallableModule below says why)
_CALLABLE_MODULES = ("export", "bench")

__all__ = sorted([*_LAZY, *_CALLABLE_MODULES, *_ERRORS, "__version__"])


class _CallableModule(_types.ModuleType):
    """A module whose call runs the API function named by its ``__call_target__``.

    ``ppinfer.export`` and ``ppinfer.bench`` are modules (the library code) and, in the Python
    API, functions. Python sets ``ppinfer.export`` to the module as soon as anything imports
    ``ppinfer.export.<name>``, so a plain function of that name here would be replaced behind
    the user's back. Instead the module itself is made callable: whatever was imported first,
    ``ppinfer.export(...)`` calls :func:`ppinfer.api.exporting.export`, and its ``__doc__``
    (what ``help()`` and IDEs show) starts with that function's signature and docstring.
    """

    def __call__(self, *args: _Any, **kwargs: _Any) -> _Any:
        return self._call_target()(*args, **kwargs)

    def _call_target(self):
        module_name, function_name = self.__dict__["__call_target__"]
        return getattr(_importlib.import_module(module_name), function_name)

    @property
    def __signature__(self):
        """The API function's signature, for ``inspect.signature`` and IDEs."""
        import inspect

        return inspect.signature(self._call_target())

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        """The API function's signature and docstring, then the package's own."""
        import inspect

        target = self._call_target()
        name = self.__name__
        own = inspect.cleandoc(self.__dict__.get("__doc__") or "")
        return (f"{name}{inspect.signature(target)}\n\n{inspect.getdoc(target) or ''}\n\n"
                f"The module {name} (the code behind it): {own}")

    @__doc__.setter
    def __doc__(self, value: str | None) -> None:
        self.__dict__["__doc__"] = value


def _make_callable(module_name: str, target: str) -> None:
    """Make the module ``module_name`` callable as ``target`` (``"package.module:function"``)."""
    module = _sys.modules[module_name]
    module.__call_target__ = tuple(target.split(":"))
    module.__class__ = _CallableModule


def __getattr__(name: str) -> _Any:
    if name in _CALLABLE_MODULES:
        return _importlib.import_module(f"ppinfer.{name}")
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ppinfer' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public surface: ``__all__`` (the helpers above are not part of it)."""
    return list(__all__)
