"""What an export builds: the architecture, its PaddleClas arguments, class count, input shape,
preprocessing and labels, each from the first of: the command line, the training config
(``-c``, else the ``config.yaml`` PaddleX or PaddleClas training left beside the checkpoint,
said in a note), the architecture's defaults. A default taken where the checkpoint cannot show
the value and the scores depend on it is said in a note: an export never guesses silently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ppinfer.checkpoints.training_outputs import checkpoint_file, configs_beside
from ppinfer.errors import CheckpointError, ConfigError
from ppinfer.modelfiles.training_config import TrainingConfig, read_training_config
from ppinfer.models import ModelSpec, get_model
from ppinfer.models.arguments import ArchArguments, assumed_note
from ppinfer.pipeline.preprocess_config import PreprocessConfig, PreprocessConfigError

DEFAULT_CLASS_NUM = 1000
LABEL_SEARCH_DEPTH = 4  # PaddleClas's class_id_map_file is relative to its repository's root
IMAGENET_LABELS = "imagenet1k_label_list.txt"  # ppcls/utils/'s, which ppinfer ships
# PaddleX's trainer copies the dataset's label.txt, which the config names, beside config.yaml
PADDLEX_LABELS = "label_dict.txt"


@dataclass
class ExportPlan:
    spec: ModelSpec
    arguments: ArchArguments
    class_num: int
    input_shape: tuple[int, int, int]
    preprocess: PreprocessConfig
    labels_file: str | None = None
    topk: int = 5
    card_name: str | None = None  # Global.model_name for inference.yml (PaddleX's name)
    part: str | None = None  # a distillation checkpoint's part to export
    config: TrainingConfig | None = None
    notes: list[str] = field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        """For inference.yml's ``ppinfer:`` section: what was built, and from what."""
        out: dict[str, Any] = dict(self.arguments.record())
        if self.config is not None:
            out["training_config"] = os.path.abspath(self.config.path)
        if self.part is not None:
            out["checkpoint_part"] = self.part
        return out


def plan_export(
    model_name: str | None,
    *,
    config: str | os.PathLike | Literal[False] | None = None,
    class_num: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    arch_args: dict[str, Any] | None = None,
    labels_file: str | None = None,
    part: str | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> ExportPlan:
    """Resolve an export's settings: explicit arguments first, then ``config``'s (without one,
    the training config found beside ``checkpoint``; False: none at all), then the
    architecture's defaults (see the module doc)."""
    found = [Path(_shown(path)) for path in configs_beside(Path(checkpoint))] \
        if config is None and checkpoint is not None else []
    if config is False and not model_name:
        raise ConfigError("Name the architecture with -m/--model-name: --no-config reads no "
                          "training config.")
    config = config or None  # False: not looked for
    trained = _read_config(found[0] if found else config, part, beside=bool(found))
    if trained is None and not model_name and checkpoint is not None \
            and not checkpoint_file(Path(checkpoint)).exists():  # a mistyped -p: say that first
        raise CheckpointError(f"Checkpoint {checkpoint} does not exist: check the -p/--params "
                              "path.")
    spec = _architecture(model_name, trained, beside=bool(found))
    where = {}
    given: dict[str, Any] = {}
    if trained is not None:
        given.update(trained.arguments)
        where.update({name: f"{trained.where}.{name}" for name in trained.arguments})
    for name, value in (arch_args or {}).items():
        given[name] = value
        where[name] = f"--arch-arg {name}"
    arguments = spec.arguments(given, where, defaults_known=trained is not None)
    plan = ExportPlan(
        spec=spec,
        arguments=arguments,
        class_num=class_num or (trained and trained.class_num) or DEFAULT_CLASS_NUM,
        input_shape=spec.input_shape,
        preprocess=spec.preprocess,
        config=trained,
        # A part the config does not name is left to the checkpoint's default (Student,
        # as the config's arguments are), which then says so.
        part=trained.part if trained is not None and trained.part_named else part,
        card_name=(trained.paddlex_name if trained is not None else None) or spec.card_name,
    )
    if found:
        plan.notes.append(_found_note(found))
    _shape_and_preprocess(plan, trained, input_shape)
    plan.labels_file = labels_file or _config_labels(plan, trained)
    if trained is not None and trained.topk:
        plan.topk = trained.topk
    if trained is not None:
        plan.notes.extend(trained.notes)
    if arguments.assumed_unseen:
        plan.notes.append(assumed_note(spec.name, arguments.assumed_unseen))
    return plan


def _read_config(config: str | os.PathLike | None, part: str | None, beside: bool
                 ) -> TrainingConfig | None:
    if config is None:
        return None
    try:
        return read_training_config(config, part)
    except ConfigError as exc:
        if not beside:
            raise
        raise _from_found_config(exc) from None


def _from_found_config(exc: ConfigError) -> ConfigError:
    """``exc``, raised by a config nobody passed, saying where it came from and what to do."""
    return type(exc)(f"{str(exc).rstrip('.')} (the training config found beside the "
                     "checkpoint): pass -c with the one to use, or --no-config.")


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the current folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # Windows: another drive
        return str(path)
    outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)
    return str(path) if outside else relative


def _found_note(found: list[Path]) -> str:
    farther = f", the nearest of {len(found)}: also {', '.join(map(_shown, found[1:]))}" \
        if len(found) > 1 else ""
    return (f"Using the training config {_shown(found[0])} (found beside the checkpoint"
            f"{farther}); pass -c to use another, --no-config to use none.")


def _architecture(model_name: str | None, trained: TrainingConfig | None, beside: bool = False
                  ) -> ModelSpec:
    if trained is None:
        if not model_name:
            raise ConfigError("Name the architecture: pass -m/--model-name, or the training "
                              "config with -c/--config.")
        return get_model(model_name)
    try:
        spec = get_model(trained.model_name)
    except ConfigError as exc:  # an architecture ppinfer does not build
        if not beside:
            raise
        raise type(exc)(
            f"The training config found beside the checkpoint, {_shown(trained.path)}, trains "
            f"{trained.model_name}, which ppinfer does not build: pass -c with the config to "
            "use (a model PaddleClas or PaddleX exported runs as it is: ppinfer predict "
            "--model DIR).") from None
    if model_name and get_model(model_name).name != spec.name:
        if beside:
            raise ConfigError(
                f"-m {model_name} is not {trained.model_name}, the architecture of "
                f"{_shown(trained.path)} (the training config found beside the checkpoint): "
                "leave -m out, pass -c with the config the checkpoint was trained with, or "
                "--no-config to ignore that one.")
        raise ConfigError(f"-m {model_name} is not the architecture {trained.path} trained "
                          f"({trained.model_name}): leave -m out, the config names it.")
    return spec


def _shape_and_preprocess(plan: ExportPlan, trained: TrainingConfig | None,
                          input_shape: tuple[int, int, int] | None) -> None:
    """The input shape and preprocessing: ``--image-shape`` over ``Global.image_shape`` over
    the architecture's; the config's ``Infer.transforms`` over the architecture's; the crop
    follows the shape where they differ."""
    preprocess = (trained.preprocess if trained else None) or plan.spec.preprocess
    shape = input_shape or (trained.image_shape if trained else None)
    made = (3, preprocess.crop_size[1], preprocess.crop_size[0])
    if shape is None:
        shape = made if trained is not None and trained.preprocess is not None else \
            plan.spec.input_shape
    elif input_shape is None and trained is not None and trained.preprocess is not None \
            and tuple(shape[1:]) != made[1:]:
        # PaddleClas feeds its program what Infer.transforms make, whatever image_shape
        # declared: those are the scores its predictor gives.
        plan.notes.append(
            f"{trained.path}'s Global.image_shape {list(shape)} differs from what its "
            f"Infer.transforms make ({made[2]}x{made[1]}): the input is {list(made)}, as "
            "PaddleClas's predictor feeds it.")
        shape = made
    try:
        plan.preprocess = preprocess.for_input_shape(tuple(shape))
    except PreprocessConfigError as exc:
        raise ConfigError(f"--image-shape {','.join(map(str, shape))} does not fit the "
                          f"preprocessing: {exc}.") from None
    plan.input_shape = tuple(shape)  # type: ignore[assignment]


def _config_labels(plan: ExportPlan, trained: TrainingConfig | None) -> str | None:
    """The config's ``class_id_map_file``, found as PaddleClas would (from its repository's
    root: the current folder, or a folder above the config), else PaddleX's copy of it in the
    training output folder, when its length fits."""
    if trained is None or trained.label_file is None:
        return None
    named = Path(trained.label_file)
    folders = [Path.cwd(), *list(trained.path.resolve().parents)[:LABEL_SEARCH_DEPTH]]
    for folder in ([Path()] if named.is_absolute() else folders):
        candidate = folder / named
        if candidate.is_file():
            return str(candidate)
    if named.name == IMAGENET_LABELS and plan.class_num == 1000:
        return None  # the ImageNet-1k names ppinfer ships are that file's
    copy = trained.path.parent / PADDLEX_LABELS
    if copy.is_file():
        plan.notes.append(f"{trained.path}'s Infer.PostProcess.class_id_map_file "
                          f"{trained.label_file} is not found here: the labels are {copy}, "
                          "PaddleX's copy of it beside the config.")
        return str(copy)
    plan.notes.append(f"{trained.path}'s Infer.PostProcess.class_id_map_file "
                      f"{trained.label_file} is not found here: the labels are "
                      f"{'ImageNet-1k' if plan.class_num == 1000 else 'class numbers'} "
                      "(pass --labels FILE to name them).")
    return None


def with_part(plan: ExportPlan, part: str | None, parts: list[str]) -> ExportPlan:
    """``plan`` told which distillation part the checkpoint gave; a note says so when
    nobody named it. A config's part saved alone (no parts in the file) is no part."""
    if part is None:
        return replace(plan, part=None) if plan.part is not None else plan
    if plan.part is not None:
        return plan
    note = (f"The checkpoint holds the distillation parts {', '.join(parts)}: exported "
            f"{part} (--checkpoint-part picks another).")
    return replace(plan, part=part, notes=[*plan.notes, note])
