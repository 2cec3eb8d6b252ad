"""``inference.yml``: the model's own preprocessing, labels and provenance, beside the program.

The schema is the one PaddleClas 2.x (``export_for_fd``) and PaddleX write, so models move both
ways: ``Global.model_name``, ``PreProcess.transform_ops`` (ResizeImage, CropImage,
NormalizeImage, ToCHWImage) and ``PostProcess.Topk`` (``topk``, ``label_list``). ppinfer adds a
``ppinfer:`` section (class count, input shape, checkpoint digest, versions) others ignore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ppinfer.errors import ModelFormatError
from ppinfer.pipeline.preprocess_config import PreprocessConfig

CARD_NAME = "inference.yml"


@dataclass
class ModelCard:
    model_name: str | None = None
    preprocess: PreprocessConfig | None = None
    labels: list[str] | None = None
    topk: int = 5
    provenance: dict[str, Any] = field(default_factory=dict)  # the ppinfer: section

    @property
    def class_num(self) -> int | None:
        value = self.provenance.get("class_num")
        return int(value) if value is not None else (len(self.labels) if self.labels else None)

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        value = self.provenance.get("input_shape")
        return tuple(int(v) for v in value) if value else None

    def to_dict(self) -> dict[str, Any]:
        provenance = dict(self.provenance)
        global_name = paddlex_model_name(self.model_name) if self.model_name else None
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


# PaddleClas spells its PP- families without the hyphen (PPLCNet_x1_0, PPHGNetV2_B4); PaddleX
# names them PP-LCNet_x1_0, PP-HGNetV2-B4. Other names (ResNet50_vd, MobileNetV3_small_x0_35)
# are the same in both.
_PADDLEX_PREFIXES = (
    ("PPHGNetV2_", "PP-HGNetV2-"),
    ("PPHGNet_", "PP-HGNet_"),
    ("PPLCNetV2_", "PP-LCNetV2_"),
    ("PPLCNet_", "PP-LCNet_"),
)


def paddlex_model_name(name: str) -> str:
    """PaddleX's name for a PaddleClas architecture name.

    PaddleX's ``create_model(model_name, model_dir=...)`` needs a name it knows and refuses a
    directory whose ``Global.model_name`` differs, so the card carries PaddleX's spelling.
    """
    for paddleclas, paddlex in _PADDLEX_PREFIXES:
        if name.startswith(paddleclas):
            return paddlex + name[len(paddleclas):]
    return name


def write_card(directory: str | Path, card: ModelCard) -> Path:
    path = Path(directory) / CARD_NAME
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(card.to_dict(), fh, sort_keys=False, allow_unicode=True)
    return path


def read_card(path: str | Path) -> ModelCard:
    """Parse an ``inference.yml``; a file that is not the expected YAML is a ModelFormatError."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = getattr(exc, "problem", None) or type(exc).__name__
        raise ModelFormatError(
            f"{path} is not valid YAML ({reason}): fix or delete it to use ppinfer's defaults."
        ) from None
    if not isinstance(doc, dict):
        raise ModelFormatError(
            f"{path} does not hold a mapping: fix or delete it to use ppinfer's defaults."
        )
    try:
        return _card_from_dict(doc, path.parent)
    except (TypeError, ValueError, KeyError, AttributeError, OSError) as exc:
        raise ModelFormatError(
            f"{path} has an unexpected shape ({exc}): fix or delete it to use ppinfer's defaults."
        ) from None


def _topk_section(post: dict[str, Any]) -> dict[str, Any]:
    """PaddleX / ``export_for_fd`` write ``PostProcess: {Topk: {...}}``; PaddleClas's deploy
    configs write ``PostProcess: {name: Topk, Topk: {...}}`` or put the keys beside ``name``."""
    section = post.get("Topk")
    if isinstance(section, dict):
        return section
    return post if post.get("name") == "Topk" else {}


def _labels_from_map_file(value: Any, base_dir: Path) -> list[str] | None:
    """PaddleClas's ``class_id_map_file`` ("id name" lines), when it is beside the card."""
    if not value:
        return None
    path = Path(str(value))
    for candidate in (path, base_dir / path, base_dir / path.name):
        if candidate.is_file():
            from ppinfer.pipeline.labels import parse_label_lines

            return parse_label_lines(candidate.read_text(encoding="utf-8").splitlines())
    return None


def _card_from_dict(doc: dict[str, Any], base_dir: Path) -> ModelCard:
    global_section = doc.get("Global") or {}
    ops = (doc.get("PreProcess") or {}).get("transform_ops")
    topk_section = _topk_section(doc.get("PostProcess") or {})
    labels = topk_section.get("label_list")
    if labels is not None and not isinstance(labels, list):
        raise ValueError("PostProcess.Topk.label_list is not a list")
    labels = labels or _labels_from_map_file(topk_section.get("class_id_map_file"), base_dir)
    provenance = _provenance(doc.get("ppinfer"))
    return ModelCard(
        model_name=provenance.get("model_name") or global_section.get("model_name"),
        preprocess=PreprocessConfig.from_paddleclas_ops(ops) if ops else None,
        labels=[str(label) for label in labels] if labels else None,
        topk=int(topk_section.get("topk", 5)),
        provenance=provenance,
    )


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
    shape = section.get("input_shape")
    if shape is not None and not (
        isinstance(shape, list) and len(shape) == 3
        and all(_is_int(v) and int(v) >= 1 for v in shape)
    ):
        raise ValueError(f"ppinfer.input_shape is {shape!r}, not [C, H, W]")
    return dict(section)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
