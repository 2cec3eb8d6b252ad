"""A PaddleClas or PaddleX training config: the architecture, input and preprocessing it names.

PaddleClas's ``tools/export_model.py -c CONFIG.yaml`` builds ``Arch`` from the training config
(``ppcls.arch.build_model``: ``Arch.name`` called with every other key as a keyword argument;
``DistillationModel`` builds each of ``Arch.models`` the same way and exports the one
``infer_model_name`` names), takes its input shape from ``Global.image_shape`` and writes
``Infer.transforms`` into ``inference.yml``. ppinfer reads the same sections; the arguments are
checked against the family's (models/arguments.py), so one ppinfer does not build is refused by
name rather than ignored.

A PaddleX training output folder holds the config it trained with as ``config.yaml`` beside
``best_model/``: the folder is read as its config.

The file is untrusted: a regular file of bounded size, YAML without tags, without aliases but to
scalars (PaddleClas's configs write ``class_num: &class_num 1000`` ... ``*class_num``), nesting
bounded; every problem is one sentence naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ppinfer.errors import ConfigError
from ppinfer.pipeline.preprocess_config import MAX_SIDE, PreprocessConfig, PreprocessConfigError
from ppinfer.safe_io import MIB, YamlRefused, load_yaml, read_regular_file, short

CONFIG_MAX_BYTES = MIB  # PaddleClas's configs are a few kilobytes
OUTPUT_CONFIG = "config.yaml"  # where PaddleX's training output keeps its config
MAX_CLASSES = 1 << 20
DISTILLATION = "DistillationModel"
DEFAULT_PART = "Student"
# Arch keys ppcls.arch.build_model and PaddleClas's ExportModel read themselves: not passed to
# the architecture. Keys of DistillationModel's own (models, ...) are read for it alone.
ARCH_KEYS = ("name", "class_num", "use_sync_bn", "use_ml_decoder", "infer_add_softmax",
             "infer_output_key", "infer_model_name")
DISTILLATION_KEYS = ("models", "pretrained_list", "freeze_params_list")


@dataclass(frozen=True)
class TrainingConfig:
    """What a training config says about the model it trained."""

    path: Path
    model_name: str  # Arch.name, or the exported part's name for a distillation config
    arguments: dict[str, Any]  # the architecture's keyword arguments, as written
    where: str  # where the arguments are written, for messages ("C's Arch")
    class_num: int | None = None  # None: unset (PaddleClas's default, 1000)
    image_shape: tuple[int, int, int] | None = None
    preprocess: PreprocessConfig | None = None
    topk: int | None = None
    paddlex_name: str | None = None  # Global.model_name, as PaddleX writes it
    part: str | None = None  # of a distillation model: the one exported
    parts: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def config_file(path: str | Path) -> Path:
    """``path``, or a PaddleX training output folder's ``config.yaml``."""
    path = Path(path)
    if path.is_dir():
        if (path / OUTPUT_CONFIG).is_file():
            return path / OUTPUT_CONFIG
        raise ConfigError(
            f"{path} is a folder without a {OUTPUT_CONFIG} (what PaddleX's training output "
            "holds): pass the training config file with -c/--config."
        )
    return path


def read_training_config(path: str | Path, part: str | None = None) -> TrainingConfig:
    """Read the training config at ``path`` (a file, or a PaddleX output folder); ``part``
    picks the model of a distillation config (default: its ``infer_model_name``, else
    Student) and is ignored for a single model's."""
    path = config_file(path)
    doc = _load(path)
    arch = _section(doc, "Arch", path, required=True)
    global_section = _section(doc, "Global", path)
    infer = _section(doc, "Infer", path)
    if "class_num" not in arch and "class_num" in global_section:
        # PaddleClas's Engine copies the deprecated Global.class_num into Arch.
        arch = {**arch, "class_num": global_section["class_num"]}
    if global_section.get("use_multilabel", False) is not False:
        raise ConfigError(f"{path} trains a multi-label model (Global.use_multilabel), which "
                          "PaddleClas exports with a sigmoid; ppinfer's exports end in softmax: "
                          "export it with PaddleClas's own tools/export_model.py.")
    model = _model_section(arch, path, part)
    preprocess, topk, post_note = _infer(infer, path)
    if post_note:
        model["notes"] = (*model.get("notes", ()), post_note)
    name = global_section.get("model_name") or global_section.get("pdx_model_name")
    return TrainingConfig(
        path=path,
        image_shape=_image_shape(global_section.get("image_shape"), path),
        preprocess=preprocess,
        topk=topk,
        paddlex_name=name if isinstance(name, str) and name else None,
        **model,
    )


def _load(path: Path) -> dict[str, Any]:
    import yaml

    data = read_regular_file(path, CONFIG_MAX_BYTES, ConfigError, what="training config ")
    try:
        doc = load_yaml(data.decode("utf-8-sig"), scalar_aliases=True)
    except (UnicodeDecodeError, YamlRefused, yaml.YAMLError) as exc:
        reason = short(getattr(exc, "problem", None) or exc, 120)
        raise ConfigError(f"Training config {path} is not YAML ppinfer reads ({reason}).") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"Training config {path} does not hold a mapping of sections "
                          "(Global, Arch, ...).")
    return doc


def _section(doc: dict, name: str, path: Path, required: bool = False) -> dict[str, Any]:
    section = doc.get(name)
    if section is None and not required:
        return {}
    if not isinstance(section, dict):
        what = "has no" if section is None else "has an unreadable"
        raise ConfigError(f"Training config {path} {what} {name} section: it is not a "
                          "PaddleClas/PaddleX training config.")
    return section


def _model_section(arch: dict, path: Path, part: str | None) -> dict[str, Any]:
    """The exported model's name, arguments and class count, from ``Arch``."""
    name = arch.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}'s Arch has no name: it does not say which architecture "
                          "it trained.")
    _check_export_keys(arch, f"{path}'s Arch")
    if name != DISTILLATION:  # ``part`` then picks from the checkpoint alone
        arguments = {k: v for k, v in arch.items() if k not in ARCH_KEYS}
        return {"model_name": name, "arguments": arguments, "where": f"{path}'s Arch",
                "class_num": _class_num(arch.get("class_num"), f"{path}'s Arch.class_num")}
    return _distillation_part(arch, path, part)


def _check_export_keys(arch: dict, where: str) -> None:
    """Arch keys that change what PaddleClas exports, refused where ppinfer cannot follow."""
    if arch.get("use_ml_decoder", False) is not False:
        raise ConfigError(f"{where} sets use_ml_decoder, a multi-label head ppinfer does not "
                          "build: export with PaddleClas's own tools/export_model.py.")
    if arch.get("infer_add_softmax", True) is not True:
        raise ConfigError(f"{where} sets infer_add_softmax: false (a model that outputs "
                          "logits); ppinfer's exports end in softmax: remove the key to export "
                          "probabilities.")
    if arch.get("infer_output_key") is not None:
        raise ConfigError(f"{where} sets infer_output_key (a feature extractor's output); "
                          "ppinfer exports classifiers only.")


def _distillation_part(arch: dict, path: Path, part: str | None) -> dict[str, Any]:
    where = f"{path}'s Arch.models"
    models = arch.get("models")
    if not isinstance(models, list) or not models:
        raise ConfigError(f"{where} is not a list of models: a {DISTILLATION} needs one.")
    parts: dict[str, dict] = {}
    for entry in models:
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise ConfigError(f"{where} has an entry that is not one 'Name: {{...}}' mapping.")
        key, spec = next(iter(entry.items()))
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ConfigError(f"{where} entry {key} has no architecture name.")
        parts[str(key)] = spec
    notes = []
    chosen = part or arch.get("infer_model_name")
    if chosen is None and DEFAULT_PART in parts:
        chosen = DEFAULT_PART
        notes.append(f"{path}'s Arch sets no infer_model_name: exporting its {DEFAULT_PART} "
                     "(--checkpoint-part NAME picks another).")
    if chosen not in parts:
        asked = "--checkpoint-part" if part else "Arch.infer_model_name"
        raise ConfigError(f"{asked} {chosen} is not one of {path}'s models "
                          f"({', '.join(parts)}): pass --checkpoint-part with one of them.")
    spec = parts[chosen]
    _check_export_keys(spec, f"{where}'s {chosen}")
    return {
        "model_name": spec["name"],
        "arguments": {k: v for k, v in spec.items() if k not in ("name", "class_num")},
        "where": f"{where}'s {chosen}",
        # DistillationModel passes each model its own arguments only: no class_num, 1000.
        "class_num": _class_num(spec.get("class_num"), f"{where}'s {chosen}.class_num"),
        "part": str(chosen),
        "parts": tuple(parts),
        "notes": tuple(notes),
    }


def _class_num(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CLASSES:
        raise ConfigError(f"{where} is {value!r}, not a class count from 1 to {MAX_CLASSES}.")
    return int(value)


def _image_shape(value: Any, path: Path) -> tuple[int, int, int] | None:
    if value is None:
        return None
    ok = (isinstance(value, list) and len(value) == 3
          and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE
                  for v in value))
    if not ok:
        raise ConfigError(f"{path}'s Global.image_shape is {value!r}, not [C, H, W] such as "
                          "[3, 224, 224].")
    return tuple(value)  # type: ignore[return-value]


def _infer(infer: dict, path: Path) -> tuple[PreprocessConfig | None, int | None, str | None]:
    """``Infer.transforms`` as ppinfer's preprocessing, ``Infer.PostProcess.topk``, and a note
    when the post-processing is not a top-k (PULC's ThreshOutput): the scores are the same, what
    is shown of them differs."""
    transforms = infer.get("transforms")
    preprocess = None
    if transforms is not None:
        try:
            preprocess = PreprocessConfig.from_paddleclas_ops(transforms)
        except PreprocessConfigError as exc:
            raise ConfigError(f"{path}'s Infer.transforms: {exc}.") from None
    post = infer.get("PostProcess")
    post = post if isinstance(post, dict) else {}
    topk = post.get("topk")
    if topk is not None and not (isinstance(topk, int) and not isinstance(topk, bool)
                                 and topk >= 1):
        raise ConfigError(f"{path}'s Infer.PostProcess.topk is {topk!r}, not a positive "
                          "whole number.")
    name = post.get("func") if post.get("name") == "DistillationPostProcess" else post.get("name")
    note = None
    if name not in (None, "Topk"):
        note = (f"{path}'s Infer.PostProcess is {short(name, 40)}, which ppinfer does not apply: "
                "predict shows the top-k of the same scores.")
    return preprocess, topk, note
