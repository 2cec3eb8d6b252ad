"""What an engine runs: the model files or checkpoint, plus everything resolved about them.

Resolution order for each setting (timm's rule): what the user passed, else the model's own
``inference.yml``, else the architecture's defaults, else ppinfer's global default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from ppinfer.errors import ConfigError
from ppinfer.modelfiles.formats import (
    CHECKPOINT_KINDS,
    PADDLE_KINDS,
    ModelLayout,
    detect_model,
)
from ppinfer.modelfiles.modelcard import ModelCard, read_card
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS, PreprocessConfig


@dataclass
class ModelSource:
    layout: ModelLayout | None = None  # an inference model or checkpoint on disk
    checkpoint: Path | None = None  # for engines that build the architecture
    model_name: str | None = None
    class_num: int | None = None
    input_shape: tuple[int, int, int] = (3, 224, 224)
    input_name: str = "x"
    preprocess: PreprocessConfig = IMAGENET_PREPROCESS
    labels_file: str | None = None
    card: ModelCard | None = None
    output: str | None = None  # softmax | sigmoid | logits; None: read on first use
    _labels: dict[int, list[str]] = field(default_factory=dict, repr=False)

    @property
    def display_name(self) -> str:
        if self.model_name:
            return self.model_name
        if self.layout is not None:
            return self.layout.root.name
        return str(self.checkpoint)

    @property
    def quantized_for(self) -> str | None:
        """The engine ``ppinfer quantize`` made this int8 model for (its card's
        ``ppinfer.quantization`` record), or None for a float model."""
        record = self.card.provenance.get("quantization") if self.card is not None else None
        engine = record.get("engine") if isinstance(record, dict) else None
        return engine if isinstance(engine, str) and engine else None

    @property
    def float_model(self) -> Path | None:
        """The directory of the float model ``ppinfer quantize`` made this int8 model from
        (its card's record), or None."""
        record = self.card.provenance.get("quantization") if self.card is not None else None
        path = record.get("float_model") if isinstance(record, dict) else None
        return Path(path) if isinstance(path, str) and path else None

    def output_kind(self) -> str | None:
        """What the model's program ends in (``softmax``, ``sigmoid`` or ``logits``), decided
        once: read from the program itself (ppinfer's exports, PaddleClas and PaddleX models
        alike; the program is the fact, a card copied beside another program is not), else
        the ``ppinfer.pipeline.output`` export wrote into ``inference.yml``, else None."""
        if self.output is None:
            from ppinfer.modelfiles.program_output import OUTPUTS, output_kind

            layout = self.layout
            if layout is not None and layout.program is not None and layout.kind in PADDLE_KINDS:
                self.output = output_kind(layout.program)
            recorded = self.card.provenance.get("output") if self.card else None
            if self.output is None and recorded in OUTPUTS:
                self.output = recorded
        return self.output

    def labels_for(self, class_num: int) -> list[str]:
        """Label names for a classifier of width ``class_num`` (cached)."""
        if class_num not in self._labels:
            from ppinfer.pipeline.labels import load_labels

            card_labels = self.card.labels if self.card else None
            if self.labels_file is None and card_labels:
                if len(card_labels) != class_num:
                    from ppinfer.errors import ModelFormatError

                    raise ModelFormatError(
                        f"{self.layout.card if self.layout else 'The model card'} lists "
                        f"{len(card_labels)} labels and the model has {class_num} classes: fix "
                        "its label_list, or pass --labels FILE with one label per class."
                    )
                self._labels[class_num] = card_labels
            else:
                self._labels[class_num] = load_labels(self.labels_file, class_num)
        return self._labels[class_num]


def resolve_source(
    *,
    model: str | None = None,
    model_file: str | None = None,
    params_file: str | None = None,
    model_dir: str | None = None,
    model_name: str | None = None,
    class_num: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    labels_file: str | None = None,
    needs_architecture: bool = False,
    prefer: str = "pir",
) -> ModelSource:
    """Turn the CLI's model options into a :class:`ModelSource`.

    For engines that build the architecture, ``params_file`` is the checkpoint; without it, a
    checkpoint directory given as ``--model``, or the checkpoint an exported model's
    ``inference.yml`` names, is used.
    """
    if model and model_dir:
        raise ConfigError("Pass either --model or -d/--model-dir, not both.")
    root = model or model_dir
    layout = card = None
    if root is not None or model_file is not None:
        layout = detect_model(root, model_file, None if needs_architecture else params_file,
                              prefer=prefer)
    if layout is not None and layout.card is not None:
        card = read_card(layout.card)
    model_name = model_name or (card.model_name if card else None)
    checkpoint = None
    if needs_architecture:
        if not model_name:
            raise ConfigError(
                "This engine builds the architecture: pass --model-name (see `ppinfer models`)."
            )
        checkpoint = _checkpoint_for(params_file, layout, card)
    spec = None
    if model_name and (needs_architecture or card is None or card.preprocess is None):
        from ppinfer.models import get_model

        spec = get_model(model_name)
    preprocess = (
        (card.preprocess if card else None)
        or (spec.preprocess if spec else None)
        or IMAGENET_PREPROCESS
    )
    shape = (
        image_shape
        or (card.input_shape if card else None)
        or (spec.input_shape if spec else None)
        or (3, preprocess.crop_size[1], preprocess.crop_size[0])
    )
    if image_shape:
        preprocess = preprocess.for_input_shape(image_shape)
    return ModelSource(
        layout=layout,
        checkpoint=checkpoint,
        model_name=model_name,
        class_num=class_num or (card.class_num if card else None),
        input_shape=tuple(shape),
        input_name=str((card.provenance.get("input_name") if card else None) or "x"),
        preprocess=preprocess,
        labels_file=labels_file,
        card=card,
    )


def _checkpoint_for(params_file, layout, card) -> Path:
    if params_file:
        return Path(params_file)
    if layout is not None and layout.kind in CHECKPOINT_KINDS:
        return layout.params or layout.root
    recorded = card.provenance.get("checkpoint") if card else None
    if recorded and Path(recorded).exists():
        return Path(recorded)
    raise ConfigError("This engine needs a checkpoint: pass it with -p/--params-file.")


def with_checkpoint(source: ModelSource) -> ModelSource | None:
    """``source`` made runnable by engines that build the architecture, or None if it can't be."""
    if source.checkpoint is not None:
        return source
    if not source.model_name:
        return None
    try:
        checkpoint = _checkpoint_for(None, source.layout, source.card)
    except ConfigError:
        return None
    return replace(source, checkpoint=checkpoint, _labels={})
