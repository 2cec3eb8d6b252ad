"""``inference.yml``: the model's own preprocessing, labels and provenance, beside the program.

The schema is the one PaddleClas 2.x (``export_for_fd``) and PaddleX write, so models move both
ways: ``Global.model_name``, ``PreProcess.transform_ops`` (ResizeImage, CropImage,
NormalizeImage, ToCHWImage) and ``PostProcess.Topk`` (``topk``, ``label_list``). ppinfer adds a
``ppinfer:`` section (class count, input shape, checkpoint digest, versions) others ignore.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ppinfer.errors import ModelFormatError
from ppinfer.pipeline.preprocess_config import PreprocessConfig
from ppinfer.safe_io import (
    CARD_MAX_BYTES,
    YamlRefused,
    contained_path,
    load_yaml,
    read_regular_file,
    short,
)

CARD_NAME = "inference.yml"


@dataclass
class ModelCard:
    model_name: str | None = None
    preprocess: PreprocessConfig | None = None
    labels: list[str] | None = None
    topk: int = 5
    provenance: dict[str, Any] = field(default_factory=dict)  # the ppinfer: section
    # PaddleX's name for the architecture, written as Global.model_name where it differs:
    # PaddleX's create_model(model_name, model_dir=...) refuses a card naming anything else.
    paddlex_name: str | None = None

    @property
    def class_num(self) -> int | None:
        value = self.provenance.get("class_num")
        return int(value) if value is not None else (len(self.labels) if self.labels else None)

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        value = self.provenance.get("input_shape")
        return tuple(int(v) for v in value) if value else None

    @property
    def architecture_arguments(self) -> dict[str, Any]:
        """The PaddleClas constructor arguments the export built (``ppinfer:`` section): an
        engine that builds the architecture again from the checkpoint builds it with them."""
        return dict(self.provenance.get("architecture_arguments") or {})

    @property
    def checkpoint_part(self) -> str | None:
        """The model of a distillation checkpoint the export took (``Student``)."""
        return self.provenance.get("checkpoint_part")

    def to_dict(self) -> dict[str, Any]:
        provenance = dict(self.provenance)
        global_name = self.paddlex_name or self.model_name
        if global_name != self.model_name:  # keep ppinfer's own name where PaddleX's differs
            provenance["model_name"] = self.model_name
        doc: dict[str, Any] = {"Global": {"model_name": global_name}}
        if self.preprocess is not None:
            doc["PreProcess"] = {"transform_ops": self.preprocess.to_paddleclas_ops()}
        post: dict[str, Any] = {"topk": self.topk}
        if self.labels:
            post["label_list"] = list(self.labels)
        doc["PostProcess"] = {"Topk": post}
        if provenance:
            doc["ppinfer"] = provenance
        return doc


def write_card(directory: str | Path, card: ModelCard) -> Path:
    path = Path(directory) / CARD_NAME
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(card.to_dict(), fh, sort_keys=False, allow_unicode=True)
    return path


def read_card(path: str | Path) -> ModelCard:
    """Parse an ``inference.yml``; a card that cannot be read or trusted is a ModelFormatError.

    Read as untrusted input (:mod:`ppinfer.safe_io`): a regular file of at most
    :data:`~ppinfer.safe_io.CARD_MAX_BYTES`, YAML without aliases and with bounded nesting,
    error messages cut to one short line.
    """
    path = Path(path)
    data = read_regular_file(path, CARD_MAX_BYTES, ModelFormatError, what="model card ")
    try:
        doc = load_yaml(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError, YamlRefused) as exc:
        reason = short(getattr(exc, "problem", None) or exc, 120)
        raise ModelFormatError(
            f"{path} is not valid YAML ({reason}): fix or delete it to use ppinfer's defaults."
        ) from None
    if not isinstance(doc, dict):
        raise ModelFormatError(
            f"{path} does not hold a mapping: fix or delete it to use ppinfer's defaults."
        )
    try:
        return _card_from_dict(doc, path.parent)
    except (TypeError, ValueError, KeyError, AttributeError, OSError, OverflowError) as exc:
        raise ModelFormatError(
            f"{path} has an unexpected shape ({short(exc, 200)}): fix or delete it to use "
            "ppinfer's defaults."
        ) from None


def _topk_section(post: dict[str, Any]) -> dict[str, Any]:
    """PaddleX / ``export_for_fd`` write ``PostProcess: {Topk: {...}}``; PaddleClas's deploy
    configs write ``PostProcess: {name: Topk, Topk: {...}}`` or put the keys beside ``name``."""
    section = post.get("Topk")
    if isinstance(section, dict):
        return section
    return post if post.get("name") == "Topk" else {}


def _labels_from_map_file(value: Any, base_dir: Path) -> list[str] | None:
    """PaddleClas's ``class_id_map_file`` ("id name" lines), when it is beside the card.

    The path must stay inside the model directory (symlinks resolved): a downloaded model must
    not show the lines of another file on disk in its predictions.
    """
    if not value:
        return None
    named = str(value)
    for candidate in (named, Path(named).name):
        path = contained_path(base_dir, candidate, ModelFormatError,
                              f"{base_dir / CARD_NAME}'s class_id_map_file")
        if os.path.lexists(path):
            from ppinfer.pipeline.labels import parse_label_lines

            data = read_regular_file(path, CARD_MAX_BYTES, ModelFormatError,
                                     what="label map ")
            return parse_label_lines(data.decode("utf-8-sig").splitlines())
    return None


def _card_from_dict(doc: dict[str, Any], base_dir: Path) -> ModelCard:
    global_section = doc.get("Global") or {}
    ops = (doc.get("PreProcess") or {}).get("transform_ops")
    topk_section = _topk_section(doc.get("PostProcess") or {})
    labels = topk_section.get("label_list")
    if labels is not None and not isinstance(labels, list):
        raise ValueError("PostProcess.Topk.label_list is not a list")
    if labels and not all(isinstance(v, (str, int, float)) for v in labels):
        odd = next(v for v in labels if not isinstance(v, (str, int, float)))
        raise ValueError(f"PostProcess.Topk.label_list holds a {type(odd).__name__}, "
                         "not a name")
    labels = labels or _labels_from_map_file(topk_section.get("class_id_map_file"), base_dir)
    provenance = _provenance(doc.get("ppinfer"))
    card = ModelCard(
        model_name=provenance.get("model_name") or global_section.get("model_name"),
        preprocess=PreprocessConfig.from_paddleclas_ops(ops) if ops else None,
        labels=[str(label) for label in labels] if labels else None,
        topk=int(topk_section.get("topk", 5)),
        provenance=provenance,
    )
    declared = card.provenance.get("class_num")
    if card.labels and declared is not None and len(card.labels) != int(declared):
        raise ValueError(f"it lists {len(card.labels)} labels for ppinfer.class_num {declared}")
    return card


def _provenance(section: Any) -> dict[str, Any]:
    """The ``ppinfer:`` section, with the values predict relies on checked now rather than
    failing later as a bare ValueError (a hand-edited card is still the user's input)."""
    if not section:
        return {}
    if not isinstance(section, dict):
        raise ValueError("the ppinfer section is not a mapping")
    name = section.get("model_name")
    if name is not None and not (isinstance(name, str) and name):
        raise ValueError(f"ppinfer.model_name is {name!r}, not a name")
    class_num = section.get("class_num")
    if class_num is not None and not (_is_int(class_num) and int(class_num) >= 1):
        raise ValueError(f"ppinfer.class_num is {class_num!r}, not a positive integer")
    arguments = section.get("architecture_arguments")
    if arguments is not None and not (
        isinstance(arguments, dict) and all(isinstance(k, str) for k in arguments)
    ):
        raise ValueError(f"ppinfer.architecture_arguments is {short(arguments, 60)}, not a "
                         "mapping of argument names")
    part = section.get("checkpoint_part")
    if part is not None and not (isinstance(part, str) and part):
        raise ValueError(f"ppinfer.checkpoint_part is {part!r}, not a name")
    shape = section.get("input_shape")
    if shape is not None and not (
        isinstance(shape, list) and len(shape) == 3
        and all(_is_int(v) and int(v) >= 1 for v in shape)
    ):
        raise ValueError(f"ppinfer.input_shape is {shape!r}, not [C, H, W]")
    return dict(section)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
