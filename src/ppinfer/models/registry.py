"""The architecture registry: ``@register_model`` on a factory fills it at import.

Importing this module does not import Paddle; the family modules (``resnet.py``, ...) do, and
they are imported on first lookup by :func:`_load_families`.
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ppinfer.checkpoints.namings import Naming
from ppinfer.errors import UnknownNameError
from ppinfer.models.arguments import Argument, Arguments, resolve
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig

# Family modules, imported once on first registry access. Add a family here.
FAMILY_MODULES = (
    "ppinfer.models.resnet",
    "ppinfer.models.mobilenet_v3",
    "ppinfer.models.efficientnet",
    "ppinfer.models.pp_lcnet",
    "ppinfer.models.pp_hgnetv2",
)


@dataclass(frozen=True)
class ModelSpec:
    """An architecture and the defaults that belong to it."""

    name: str
    factory: Callable[..., Any]  # factory(class_num: int, **forward arguments) -> nn.Layer
    family: str
    input_shape: tuple[int, int, int] = (3, 224, 224)
    preprocess: PreprocessConfig = IMAGENET_PREPROCESS
    # name -> callable(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]: maps a foreign
    # state dict (e.g. "torch") onto this architecture's Paddle parameter names and layouts.
    foreign_maps: dict[str, Callable[[dict], dict]] = field(default_factory=dict)
    # Other namings of this family's .pdparams keys (e.g. PaddleClas 2.x structured names), tried
    # after variable names and the model's own structured names: see checkpoints/namings.py.
    namings: tuple[Naming, ...] = ()
    # Other names users know the architecture by: get_model accepts them, list_models shows
    # ``name``. ``paddlex_name`` (one of them) is PaddleX's name where it differs, e.g.
    # "PP-LCNet_x1_0" for PPLCNet_x1_0: inference.yml's Global.model_name is PaddleX's name
    # (PaddleClas's dump_infer_config writes its pdx_model_name there, and PaddleX refuses a
    # model directory whose name is not one of its own).
    aliases: tuple[str, ...] = ()
    paddlex_name: str | None = None
    # The keyword arguments the family's PaddleClas constructor takes (models/arguments.py):
    # a training config's ``Arch`` section is checked against them.
    arguments: tuple[Argument, ...] = ()

    def build(self, class_num: int = 1000, **forward: Any):
        """The architecture as a dygraph Layer; ``forward``: its ``forward`` arguments (the
        rest take PaddleClas's defaults)."""
        return self.factory(class_num=class_num, **forward)

    def resolve_arguments(self, given: dict[str, Any] | None = None,
                          where: str | dict[str, str] = "--arch-arg") -> Arguments:
        """``given`` checked against :attr:`arguments`, the rest PaddleClas's defaults."""
        return resolve(self.name, self.arguments, given or {}, where)

    @property
    def card_name(self) -> str:
        """The name an exported model's inference.yml records (Global.model_name)."""
        return self.paddlex_name or self.name


_MODELS: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}  # alias -> registered name
_loaded = False


def register_model(
    name: str | None = None,
    *,
    input_shape: tuple[int, int, int] = (3, 224, 224),
    preprocess: PreprocessConfig = IMAGENET_PREPROCESS,
    foreign_maps: dict[str, Callable[[dict], dict]] | None = None,
    namings: tuple[Naming, ...] = (),
    aliases: tuple[str, ...] = (),
    paddlex_name: str | None = None,
    arguments: tuple[Argument, ...] = (),
):
    """Register ``factory(class_num=..., **forward arguments) -> nn.Layer`` under ``name``
    (default: its __name__), also reachable by each of ``aliases`` and by ``paddlex_name``.
    ``arguments``: the PaddleClas constructor's keyword arguments (models/arguments.py)."""

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        key = name or factory.__name__
        others = tuple(dict.fromkeys(a for a in (*aliases, paddlex_name) if a and a != key))
        for taken in (key, *others):
            if taken in _MODELS or taken in _ALIASES:
                raise ValueError(f"model name {taken!r} is registered twice")
        _ALIASES.update((alias, key) for alias in others)
        _MODELS[key] = ModelSpec(
            name=key,
            factory=factory,
            family=factory.__module__.rsplit(".", 1)[-1],
            input_shape=input_shape,
            preprocess=preprocess,
            foreign_maps=dict(foreign_maps or {}),
            namings=tuple(namings),
            aliases=others,
            paddlex_name=paddlex_name if paddlex_name != key else None,
            arguments=tuple(arguments),
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
    """Registered names whose name or an alias matches an fnmatch ``pattern``, sorted."""
    _load_families()
    return sorted(
        name for name, spec in _MODELS.items()
        if any(fnmatch.fnmatchcase(n, pattern) for n in (name, *spec.aliases))
    )


def _fold(name: str) -> str:
    """A name without case and separators: "pp-lcnet_x1_0" and "PPLCNet_x1_0" fold alike."""
    return "".join(c for c in name.lower() if c.isalnum())


def _numbers(name: str) -> list[int]:
    """The numbers in a name, by value: ResNet50 and ResNet200 differ, x1_0 and x1_00 do not."""
    return [int(n) for n in re.findall(r"\d+", name)]


def _variant(name: str) -> str:
    """A short last word (``vd``, ``vc``): PaddleClas's variants of an architecture, told by
    one letter, so a letter there is another architecture, not a typo."""
    last = re.split(r"[_\-]", name)[-1].lower()
    return last if len(last) <= 2 and last.isalpha() else ""


def _one_edit_apart(a: str, b: str) -> bool:
    """One letter inserted, deleted, replaced, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    start = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
    if len(a) < len(b):
        return a[start:] == b[start + 1:]
    swapped = a[start + 2:] == b[start + 2:] and a[start:start + 2] == b[start:start + 2][::-1]
    return a[start + 1:] == b[start + 1:] or swapped


def spelled_like(typed: str, name: str) -> bool:
    """``typed`` is ``name`` misspelled: case, ``_``/``-``, or a typo of one letter -- never
    another architecture (other numbers, another variant letter, a prefix such as SE_)."""
    if _fold(typed) == _fold(name):
        return True
    if _numbers(typed) != _numbers(name) or _variant(typed) != _variant(name):
        return False
    return len(_fold(name)) >= 6 and _one_edit_apart(_fold(typed), _fold(name))


def get_model(name: str) -> ModelSpec:
    """The architecture registered as ``name`` or under the alias ``name``."""
    _load_families()
    spec = _MODELS.get(_ALIASES.get(name, name))
    if spec is not None:
        return spec
    known = [*_MODELS, *_ALIASES]
    close = [n for n in known if _fold(n) == _fold(name)]
    close = close or [n for n in known if spelled_like(name, n)]
    hint = f" Did you mean {close[0]}?" if close else ""
    aliased = f" (and aliases such as {min(_ALIASES)})" if _ALIASES else ""
    raise UnknownNameError(
        f"Unknown model {name!r}.{hint} Registered models: {', '.join(sorted(_MODELS))}"
        f"{aliased}. A model PaddleClas or PaddleX exported (inference.json or "
        "inference.pdmodel, with its inference.yml) runs without this: ppinfer predict "
        "--model DIR."
    )
