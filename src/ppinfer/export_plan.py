"""What an export builds, decided before any work: the architecture and its PaddleClas
arguments, class count, input shape, preprocessing and the card's names.

Each setting comes from, in order: the command line (``-m``, ``--class-num``,
``--image-shape``, ``--arch-arg``), the training config (``-c``: ``Arch``, ``Global.image_shape``,
``Infer``), the architecture's defaults. A default standing in for an argument the checkpoint
cannot tell, and that changes the scores, is said in a note (style practice 10: an export that
guesses an argument says it guessed).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ppinfer.errors import ConfigError, UnknownNameError
from ppinfer.models import ModelSpec, get_model
from ppinfer.models.arguments import DEFAULT_ONLY, FORWARD, TRAINING, Arguments, assumed_sentence
from ppinfer.models.training_config import TrainingConfig, read_training_config
from ppinfer.pipeline.preprocess_config import PreprocessConfig

DEFAULT_CLASS_NUM = 1000  # PaddleClas's constructors' default


@dataclass
class ExportPlan:
    spec: ModelSpec
    arguments: Arguments
    class_num: int
    input_shape: tuple[int, int, int]
    preprocess: PreprocessConfig
    topk: int = 5
    card_name: str | None = None  # inference.yml's Global.model_name
    part: str | None = None  # of a distillation checkpoint: the model exported
    part_asked: bool = False  # --checkpoint-part given: a file of one model is then refused
    config: TrainingConfig | None = None
    notes: list[str] = field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        """What the card's ``ppinfer:`` section records about the build."""
        declared = self.spec.arguments
        built = {a.name: self.arguments.values[a.name] for a in declared
                 if a.kind in (FORWARD, DEFAULT_ONLY)}
        out: dict[str, Any] = {"architecture_arguments": built}
        training = {a.name: self.arguments.values[a.name] for a in declared
                    if a.kind == TRAINING and a.name in self.arguments.given}
        if training:
            out["training_arguments"] = training
        if self.config is not None:
            out["training_config"] = os.path.abspath(self.config.path)
        else:  # every argument not given is PaddleClas's default, assumed
            out["assumed_arguments"] = [name for name in built
                                        if name not in self.arguments.given]
        if self.part is not None:
            out["checkpoint_part"] = self.part
        return out


def plan_export(
    model_name: str | None,
    *,
    config: str | os.PathLike | None = None,
    class_num: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
    arch_args: dict[str, Any] | None = None,
    checkpoint_part: str | None = None,
) -> ExportPlan:
    """Resolve an export's settings (see module doc); raises ConfigError naming a conflict."""
    training = read_training_config(config, checkpoint_part) if config is not None else None
    spec = _architecture(model_name, training)
    arguments = _arguments(spec, training, arch_args or {})
    if class_num is None:
        class_num = (training.class_num if training else None) or DEFAULT_CLASS_NUM
    if class_num < 1:
        raise ConfigError("--class-num must be at least 1.")
    shape, preprocess, notes = _input(spec, training, input_shape)
    notes = [*(training.notes if training else ()), *notes]
    assumed = arguments.assumed_hidden(spec.arguments) if training is None else []
    if assumed:
        notes.append(assumed_sentence(spec.name, assumed))
    return ExportPlan(
        spec=spec, arguments=arguments, class_num=class_num, input_shape=shape,
        preprocess=preprocess, topk=(training.topk if training else None) or 5,
        card_name=(training.paddlex_name if training else None) or spec.card_name,
        part=checkpoint_part or (training.part if training else None),
        part_asked=checkpoint_part is not None, config=training, notes=notes,
    )


def _architecture(model_name: str | None, training: TrainingConfig | None) -> ModelSpec:
    if training is None:
        if not model_name:
            raise ConfigError("Pass the architecture with -m/--model-name, or the training "
                              "config with -c/--config.")
        return get_model(model_name)
    try:
        spec = get_model(training.model_name)
    except UnknownNameError as exc:
        raise UnknownNameError(f"{training.where} names {training.model_name!r}: {exc}") from None
    if model_name and get_model(model_name).name != spec.name:
        raise ConfigError(
            f"-m {model_name} contradicts {training.where}, which trained {training.model_name}: "
            "drop -m, or pass the config the checkpoint was trained with."
        )
    return spec


def _arguments(spec: ModelSpec, training: TrainingConfig | None,
               arch_args: dict[str, Any]) -> Arguments:
    given = dict(training.arguments) if training else {}
    where = dict.fromkeys(given, training.where if training else "--arch-arg")
    given.update(arch_args)  # the command line's win
    where.update(dict.fromkeys(arch_args, "--arch-arg"))
    return spec.resolve_arguments(given, where)


def _input(
    spec: ModelSpec, training: TrainingConfig | None, image_shape: tuple[int, int, int] | None
) -> tuple[tuple[int, int, int], PreprocessConfig, list[str]]:
    """The input shape and the preprocessing that fills it: the config's ``Infer.transforms``
    where it has them (sizes must agree with ``Global.image_shape``), else the architecture's
    scaled to the shape."""
    from_config = training.preprocess if training else None
    base = from_config or spec.preprocess
    shape = image_shape or (training.image_shape if training else None)
    if shape is None:
        shape = (3, base.crop_size[1], base.crop_size[0]) if from_config else spec.input_shape
    shape = tuple(shape)
    if (shape[2], shape[1]) == tuple(base.crop_size):
        return shape, base, []
    if from_config is not None and image_shape is None:
        width, height = from_config.crop_size
        raise ConfigError(
            f"{training.path}'s Global.image_shape is {list(shape)}, and its Infer.transforms "
            f"make {width}x{height} images (width x height): fix one, or pass --image-shape."
        )
    scaled = base.for_input_shape(shape)
    notes = []
    if from_config is None:
        resize = (f"resize to {scaled.resize_size[0]}x{scaled.resize_size[1]}"
                  if scaled.resize_size else f"resize_short {scaled.resize_short}")
        notes.append(
            f"preprocessing for the {shape[2]}x{shape[1]} input is {spec.name}'s scaled "
            f"({resize}, crop {scaled.crop_size[0]}x{scaled.crop_size[1]}): pass the training "
            "config (-c CONFIG.yaml) to take its Infer.transforms."
        )
    return shape, scaled, notes
