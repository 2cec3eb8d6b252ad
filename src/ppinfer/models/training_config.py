"""The training config is the source of truth for an export (PaddleClas's
``tools/export_model.py -c config.yaml``): the ``Arch`` section names the architecture and the
constructor arguments it was trained with, ``Global.image_shape`` the input, and the ``Infer``
transforms the preprocessing.

A state dict cannot tell ``dropout_prob`` (it scales scores at inference), a stride or whether
the last conv is there when the shapes happen to fit: built from assumed defaults, such an
export is silently wrong. So every ``Arch`` argument is either one the family implements
(passed to it), one that only matters for training (listed in :data:`TRAINING_ONLY`), or
refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ppinfer.errors import ConfigError
from ppinfer.io.safe_io import load_yaml, read_regular_file
from ppinfer.pipeline.preprocess_config import PreprocessConfig

CONFIG_MAX_BYTES = 1 << 20
# Arch keys that change training, not the inference network.
TRAINING_ONLY = frozenset({"pretrained", "use_ssld", "lr_mult_list", "use_sync_bn",
                           "return_patterns", "return_stages", "freeze_params_list"})
# Arguments a checkpoint cannot reveal although they change the scores: said when assumed.
SCORE_CHANGING = ("dropout_prob",)


@dataclass
class TrainingConfig:
    path: Path
    model_name: str | None
    class_num: int | None
    arguments: dict[str, Any] = field(default_factory=dict)
    image_shape: tuple[int, int, int] | None = None
    preprocess: PreprocessConfig | None = None


def read_training_config(path: str | Path) -> TrainingConfig:
    """A PaddleClas/PaddleX training config, read as untrusted input (bounded size, YAML
    without aliases, nesting bounded)."""
    path = Path(path)
    data = read_regular_file(path, CONFIG_MAX_BYTES, ConfigError, what="training config ")
    try:
        doc = load_yaml(data.decode("utf-8-sig"))
    except Exception as exc:  # YAML errors, refused aliases, undecodable bytes
        raise ConfigError(f"{path} is not a readable YAML training config ({exc}).") from None
    arch = doc.get("Arch") if isinstance(doc, dict) else None
    if not isinstance(arch, dict):
        raise ConfigError(f"{path} has no Arch section: pass the config the model was trained "
                          "with (PaddleClas's -c).")
    if "models" in arch:
        raise ConfigError(f"{path} trains a distillation model ({arch.get('name')}): export "
                          "the student with its own architecture's config, or -m NAME.")
    arguments = {k: v for k, v in arch.items() if k not in ("name", "class_num")}
    return TrainingConfig(path, _name(arch.get("name"), path), _class_num(arch, path),
                          arguments, _image_shape(doc, path), _preprocess(doc, path))


def _name(value: Any, path: Path) -> str | None:
    if value is not None and not (isinstance(value, str) and value):
        raise ConfigError(f"Arch.name in {path} is {value!r}, not an architecture name.")
    return value


def _class_num(arch: dict, path: Path) -> int | None:
    value = arch.get("class_num")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise ConfigError(f"Arch.class_num in {path} is {value!r}, not a positive integer.")
    return value


def _image_shape(doc: dict, path: Path) -> tuple[int, int, int] | None:
    value = (doc.get("Global") or {}).get("image_shape")
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ConfigError(f"Global.image_shape in {path} is {value!r}, not [C, H, W].")
    return tuple(value)


def _preprocess(doc: dict, path: Path) -> PreprocessConfig | None:
    infer = doc.get("Infer")
    ops = infer.get("transforms") if isinstance(infer, dict) else None
    if not ops:
        return None
    try:
        return PreprocessConfig.from_paddleclas_ops(ops)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"Infer.transforms in {path}: {exc}") from None


def checked_arguments(spec, given: dict[str, Any], where: str) -> dict[str, Any]:
    """The ``Arch`` arguments ``spec``'s family takes, training-only ones dropped; any other
    is refused by name (never ignored)."""
    unknown = sorted(set(given) - set(spec.arguments) - TRAINING_ONLY)
    if unknown:
        known = ", ".join(sorted(spec.arguments)) or "none"
        raise ConfigError(
            f"Arch.{unknown[0]} in {where} is an argument ppinfer's {spec.name} does not "
            f"implement (it implements: {known}): the export would not be the network that "
            "was trained."
        )
    return {k: v for k, v in given.items() if k in spec.arguments}


def assumed_note(spec, arguments: dict[str, Any]) -> str | None:
    """One line naming a score-changing argument the export assumed (no config given)."""
    assumed = [(k, spec.arguments[k]) for k in SCORE_CHANGING
               if k in spec.arguments and k not in arguments]
    if not assumed:
        return None
    shown = ", ".join(f"{k}={v!r}" for k, v in assumed)
    return (f"Assumed {shown} (PaddleClas's default; it scales the scores): if the model was "
            "trained with another value, export with -c TRAINING_CONFIG.yaml.")


@dataclass
class ExportPlan:
    """What an export builds: the architecture, its arguments and where they came from."""

    spec: Any
    class_num: int
    input_shape: tuple[int, int, int] | None
    arguments: dict[str, Any]
    preprocess: PreprocessConfig | None  # the config's Infer transforms, else the spec's
    source: str  # the config's path, or "assumed: PaddleClas's defaults"
    note: str | None  # the one line to say about assumed score-changing arguments

    def recorded_arguments(self) -> dict[str, Any]:
        """Every argument the network was built with, for the card (plain YAML values)."""
        used = {**self.spec.arguments, **self.arguments}
        return {k: _plain(v) for k, v in sorted(used.items()) if k not in TRAINING_ONLY}


def plan_export(model_name: str | None, class_num: int | None,
                input_shape: tuple[int, int, int] | None,
                config: str | Path | None) -> ExportPlan:
    """The architecture to export, from ``-m``/``--class-num``/``--image-shape`` and the
    training config (explicit flags win; ``-m`` that contradicts ``Arch.name`` is refused)."""
    from ppinfer.models.registry import get_model

    if config is None:
        if model_name is None:
            raise ConfigError("Name the architecture with -m/--model-name, or pass the training "
                              "config with -c.")
        spec = get_model(model_name)
        return ExportPlan(spec, class_num or 1000, input_shape, {}, None,
                          "assumed: PaddleClas's defaults", assumed_note(spec, {}))
    trained = read_training_config(config)
    if model_name is None and trained.model_name is None:
        raise ConfigError(f"{trained.path} names no Arch.name: pass -m/--model-name.")
    spec = get_model(model_name or trained.model_name)
    if trained.model_name is not None and model_name is not None and \
            get_model(trained.model_name).name != spec.name:
        raise ConfigError(f"-m {model_name} contradicts Arch.name {trained.model_name} in "
                          f"{trained.path}: drop -m, or pass the model's own config.")
    arguments = checked_arguments(spec, trained.arguments, str(trained.path))
    shape = input_shape or trained.image_shape
    return ExportPlan(spec, class_num or trained.class_num or 1000, shape, arguments,
                      trained.preprocess, str(trained.path), None)


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
