"""The architecture registry: ``@register_model`` on a factory fills it at import.

Importing this module does not import Paddle; the family modules (``resnet.py``, ...) do, and
they are imported on first lookup by :func:`_load_families`.
"""

from __future__ import annotations

import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ppinfer.checkpoints.namings import Naming
from ppinfer.errors import UnknownNameError
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig

# Family modules, imported once on first registry access. Add a family here.
FAMILY_MODULES = (
    "ppinfer.models.resnet",
    "ppinfer.models.mobilenet_v3",
    "ppinfer.models.efficientnet",
)


@dataclass(frozen=True)
class ModelSpec:
    """An architecture and the defaults that belong to it."""

    name: str
    factory: Callable[..., Any]  # factory(class_num: int) -> paddle.nn.Layer
    family: str
    input_shape: tuple[int, int, int] = (3, 224, 224)
    preprocess: PreprocessConfig = IMAGENET_PREPROCESS
    # name -> callable(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]: maps a foreign
    # state dict (e.g. "torch") onto this architecture's Paddle parameter names and layouts.
    foreign_maps: dict[str, Callable[[dict], dict]] = field(default_factory=dict)
    # Other namings of this family's .pdparams keys (e.g. PaddleClas 2.x structured names), tried
    # after variable names and the model's own structured names: see checkpoints/namings.py.
    namings: tuple[Naming, ...] = ()

    def build(self, class_num: int = 1000):
        return self.factory(class_num=class_num)


_MODELS: dict[str, ModelSpec] = {}
_loaded = False


def register_model(
    name: str | None = None,
    *,
    input_shape: tuple[int, int, int] = (3, 224, 224),
    preprocess: PreprocessConfig = IMAGENET_PREPROCESS,
    foreign_maps: dict[str, Callable[[dict], dict]] | None = None,
    namings: tuple[Naming, ...] = (),
):
    """Register ``factory(class_num=...) -> nn.Layer`` under ``name`` (default: its __name__)."""

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = name or factory.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} is registered twice")
        _MODELS[key] = ModelSpec(
            name=key,
            factory=factory,
            family=factory.__module__.rsplit(".", 1)[-1],
            input_shape=input_shape,
            preprocess=preprocess,
            foreign_maps=dict(foreign_maps or {}),
            namings=tuple(namings),
        )
        return factory

    return decorator


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    from ppinfer.paddle_env import import_paddle

    import_paddle()  # quietly, or with the install hint when Paddle is missing
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    _loaded = True


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching an fnmatch ``pattern``, sorted."""
    _load_families()
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def get_model(name: str) -> ModelSpec:
    _load_families()
    try:
        return _MODELS[name]
    except KeyError:
        close = [n for n in _MODELS if n.lower() == name.lower()]
        hint = f" Did you mean {close[0]}?" if close else ""
        raise UnknownNameError(
            f"Unknown model {name!r}.{hint} Registered models: {', '.join(sorted(_MODELS))}."
        ) from None
