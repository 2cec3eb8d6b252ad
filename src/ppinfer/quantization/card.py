"""The quantized model's card.

The card is the float model's own ``inference.yml`` (preprocessing, labels, PaddleX's or
PaddleClas's spellings kept as they were), with ``ppinfer.quantization`` added: which engine and
tool, the settings, how many images calibrated and their digest, and the agreement with fp32
on the held-out images. A run that names neither engine nor precision takes both from the
record (``ModelSource.quantized_for``, ``RunConfig.for_model``, ``--engine auto``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ppinfer.errors import ModelFormatError
from ppinfer.modelfiles.modelcard import CARD_NAME, ModelCard
from ppinfer.modelfiles.source import ModelSource


def write_quantized_card(source: ModelSource, directory: Path, record: dict[str, Any]) -> Path:
    """Write ``directory/inference.yml``: the float model's card with the quantization record."""
    doc = _float_card(source)
    section = doc.get("ppinfer")
    section = dict(section) if isinstance(section, dict) else {}
    section.update({
        "input_shape": list(source.input_shape),
        "input_name": source.input_name,
        "format": _format_of(directory),
        "quantization": record,
    })
    output = source.output_kind()  # the float program's; the int8 files may not say it
    if output:
        section["output"] = output
    if source.class_num:
        section["class_num"] = int(source.class_num)
    doc["ppinfer"] = section
    if source.card is not None and source.card.labels and "label_list" not in str(doc):
        # labels from a class_id_map_file beside the float model: carried in the card
        doc["PostProcess"] = {"Topk": {"topk": source.card.topk,
                                       "label_list": list(source.card.labels)}}
    path = directory / CARD_NAME
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, sort_keys=False, allow_unicode=True)
    return path


def _float_card(source: ModelSource) -> dict[str, Any]:
    """The float model's card as YAML data (read as untrusted input), or one made from what
    ppinfer resolved for it (preprocessing, name) when it has none."""
    if source.layout is None or source.layout.card is None:
        return ModelCard(model_name=source.model_name, preprocess=source.preprocess).to_dict()
    from ppinfer.io.safe_io import CARD_MAX_BYTES, load_yaml, read_regular_file

    data = read_regular_file(source.layout.card, CARD_MAX_BYTES, ModelFormatError,
                             what="model card ")
    doc = load_yaml(data.decode("utf-8-sig"))  # read once already by resolve_source
    return dict(doc) if isinstance(doc, dict) else {}


def _format_of(directory: Path) -> str:
    from ppinfer.modelfiles.formats import detect_directory

    return detect_directory(directory, prefer="legacy").kind
