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
from ppinfer.models.arguments import ArchArguments, Param, resolve
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig

# Family modules, imported once on first registry access. Add a family here.
FAMILY_MODULES = (
    "ppinfer.models.resnet",
    "ppinfer.models.mobilenet_v3",
    "ppinfer.models.efficientnet",
    "ppinfer.models.pp_lcnet",
    "ppinfer.models.pp_hgnetv2",
    "ppinfer.models.clip",
    "ppinfer.models.swin_transformer",
    "ppinfer.models.pp_hgnet",
    "ppinfer.models.pp_lcnet_v2",
    "ppinfer.models.mobilenet_v2",
    "ppinfer.models.mobilenet_v1",
    "ppinfer.models.convnext",
    "ppinfer.models.fasternet",
    "ppinfer.models.mobilenet_v4",
    "ppinfer.models.starnet",
)


@dataclass(frozen=True)
class ModelSpec:
    """An architecture and the defaults that belong to it."""

    name: str
    # factory(class_num: int, **built) -> paddle.nn.Layer, ``built`` being the BUILT params
    factory: Callable[..., Any]
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
    # The keyword arguments of PaddleClas's constructor for this name (models/arguments.py).
    params: tuple[Param, ...] = ()

    def build(self, class_num: int = 1000, arguments: ArchArguments | None = None):
        """The dygraph model; ``arguments`` default to PaddleClas's defaults."""
        arguments = arguments or self.arguments()
        return self.factory(class_num=class_num, **arguments.built)

    def arguments(self, given: dict[str, Any] | None = None,
                  where: dict[str, str] | None = None,
                  defaults_known: bool = False) -> ArchArguments:
        """``given`` (PaddleClas constructor arguments) checked against this architecture's;
        ``where[name]`` says where each was written, for messages; ``defaults_known``: they
        are a training config's, so the others were PaddleClas's defaults in training too."""
        given = given or {}
        where = where or {}
        return resolve(self.name, self.params, given,
                       {name: where.get(name, "--arch-arg") for name in given}, defaults_known)

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
    params: tuple[Param, ...] = (),
):
    """Register ``factory(class_num=..., **built) -> nn.Layer`` under ``name`` (default: its
    __name__), also reachable by each of ``aliases`` and by ``paddlex_name``; ``params`` are
    the PaddleClas constructor's keyword arguments (models/arguments.py)."""

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
            params=tuple(params),
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


def _numbers(name: str) -> list[int]:
    return [int(group) for group in re.findall(r"\d+", name)]


def _typo(typed: str, name: str) -> bool:
    """``typed`` is ``name`` with one slip of the hand: two neighbours swapped ("lrage"), a
    letter doubled ("vdd") or one left out ("ResNt"). An inserted or replaced letter is not
    one: ResNeXt, ResNeSt and ResNet50_vc are other PaddleClas architectures, not ResNet's
    typos."""
    if len(typed) == len(name):
        diff = [i for i, (a, b) in enumerate(zip(typed, name)) if a != b]
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and typed[diff[0]] == name[diff[1]] and typed[diff[1]] == name[diff[0]])
    if len(typed) == len(name) + 1:
        return any(typed[:i] + typed[i + 1:] == name and typed[i] == typed[i - 1]
                   for i in range(1, len(typed)))
    if len(typed) + 1 == len(name):
        return any(name[:i] + name[i + 1:] == typed for i in range(len(name)))
    return False


def _same_spelled(typed: str, name: str) -> bool:
    """``typed`` is ``name`` misspelled: the same name but for case and separators, or one
    typo (:func:`_typo`) in its letters with the same numbers. "SE_ResNet50_vd",
    "ResNet200_vd" and "EfficientNetB0" name other architectures: no ResNet50_vd or
    EfficientNet_lite0 is offered for them."""
    if _fold(typed) == _fold(name):
        return True
    letters = ["".join(c for c in n.lower() if c.isalpha()) for n in (typed, name)]
    # x1_00 for x1_0: the numbers compare as numbers
    return _numbers(typed) == _numbers(name) and (letters[0] == letters[1] or _typo(*letters))


def get_model(name: str) -> ModelSpec:
    """The architecture registered as ``name`` or under the alias ``name``."""
    _load_families()
    spec = _MODELS.get(_ALIASES.get(name, name))
    if spec is not None:
        return spec
    known = [*_MODELS, *_ALIASES]
    close = [n for n in known if _fold(n) == _fold(name)] or [
        n for n in known if _same_spelled(name, n)]
    listed = (f"`ppinfer models` lists the {len(_MODELS)} architectures ppinfer builds, by "
              "PaddleClas's and PaddleX's names")
    if close:
        raise UnknownNameError(f"Unknown model {name!r}. Did you mean {close[0]}? ({listed}.)")
    raise UnknownNameError(
        f"Unknown model {name!r}: {listed}. A model PaddleClas or PaddleX exported "
        "(inference.json or inference.pdmodel beside inference.pdiparams and inference.yml) "
        "runs without ppinfer building it: ppinfer predict --model DIR."
    )
