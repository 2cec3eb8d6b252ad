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
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig

# Family modules, imported once on first registry access. Add a family here.
FAMILY_MODULES = (
    "ppinfer.models.resnet",
    "ppinfer.models.mobilenet_v3",
    "ppinfer.models.efficientnet",
    "ppinfer.models.pp_lcnet",
    "ppinfer.models.pp_hgnetv2",
    "ppinfer.models.convnext",
    "ppinfer.models.fasternet",
    "ppinfer.models.mobilenet_v4",
    "ppinfer.models.starnet",
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
    # Other names users know the architecture by: get_model accepts them, list_models shows
    # ``name``. ``paddlex_name`` (one of them) is PaddleX's name where it differs, e.g.
    # "PP-LCNet_x1_0" for PPLCNet_x1_0: inference.yml's Global.model_name is PaddleX's name
    # (PaddleClas's dump_infer_config writes its pdx_model_name there, and PaddleX refuses a
    # model directory whose name is not one of its own).
    aliases: tuple[str, ...] = ()
    paddlex_name: str | None = None
    # PaddleClas constructor arguments (``Arch`` in a training config) this family implements,
    # with PaddleClas's defaults; ``build`` passes the ones given to the factory.
    arguments: dict[str, Any] = field(default_factory=dict)

    def build(self, class_num: int = 1000, **arguments: Any):
        unknown = sorted(set(arguments) - set(self.arguments))
        if unknown:
            raise ValueError(f"{self.name} takes no argument {unknown[0]!r}")
        return self.factory(class_num=class_num, **arguments)

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
    arguments: dict[str, Any] | None = None,
):
    """Register ``factory(class_num=..., **arguments) -> nn.Layer`` under ``name`` (default:
    its __name__), also reachable by each of ``aliases`` and by ``paddlex_name``.
    ``arguments``: the PaddleClas constructor arguments it takes, with their defaults."""

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
            arguments=dict(arguments or {}),
        )
        return factory

    return decorator


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    from ppinfer.runtime.paddle_import import import_paddle

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


def get_model(name: str) -> ModelSpec:
    """The architecture registered as ``name`` or under the alias ``name``."""
    _load_families()
    spec = _MODELS.get(_ALIASES.get(name, name))
    if spec is not None:
        return spec
    close = [n for n in (*_MODELS, *_ALIASES) if _misspelled(name, n)]
    hint = f" Did you mean {min(close, key=lambda n: _distance(_fold(n), _fold(name)))}?" \
        if close else ""
    aliased = f" (and aliases such as {min(_ALIASES)})" if _ALIASES else ""
    raise UnknownNameError(
        f"Unknown model {name!r}.{hint} Registered models: {', '.join(sorted(_MODELS))}"
        f"{aliased}. An inference model PaddleClas or PaddleX exported runs with any "
        "architecture: ppinfer predict --model DIR."
    )


def _misspelled(given: str, known: str) -> bool:
    """``given`` is ``known`` spelled otherwise (case, ``_``/``-``, one or two typed letters),
    never another architecture: the numbers (depth, width, size) must be the same, and the
    letters at most two edits apart."""
    a, b = _fold(given), _fold(known)
    numbers = [[int(n) for n in re.findall(r"\d+", name)] for name in (given, known)]
    return a == b or (numbers[0] == numbers[1] and _distance(a, b) <= min(2, len(b) // 6))


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (small strings: names)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]
