"""A PaddleClas (or PaddleX) training config: the architecture, arguments, input and
preprocessing of the model it trained.

PaddleClas's ``tools/export_model.py -c CONFIG.yaml`` builds the model from ``Arch``
(``ppcls.arch.build_model``: ``Arch.name`` called with every other key as a keyword argument;
a ``DistillationModel`` builds each entry of ``Arch.models`` the same way, and its export keeps
the one ``Arch.infer_model_name`` names), feeds it ``[None, *Global.image_shape]`` and writes
``Infer.transforms`` into ``inference.yml``. This module reads the same keys; the arguments are
checked against the architecture by :mod:`ppinfer.models.arguments`, not here.

PaddleX trains with the same configs and keeps the one it used as ``config.yaml`` in its output
folder, beside ``best_model/``: such a folder (or its ``best_model/``) is read as that file.

The file is untrusted: a regular file of bounded size, YAML without tags, with aliases only to
scalars (PaddleClas writes ``class_num: &class_num 1000`` ... ``*class_num``), nesting bounded;
a problem is one sentence naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppinfer.errors import ConfigError
from ppinfer.io.safe_io import MIB, YamlRefused, load_yaml, read_regular_file, short
from ppinfer.pipeline.preprocess_config import MAX_SIDE, PreprocessConfig, PreprocessConfigError

CONFIG_MAX_BYTES = MIB  # PaddleClas's configs are a few kilobytes
OUTPUT_CONFIG = "config.yaml"  # PaddleX's training output keeps its config under this name
DISTILLATION = ("DistillationModel", "AttentionModel")
DEFAULT_PART = "Student"
MAX_CLASSES = 1 << 20
# Arch keys that build_model and PaddleClas's ExportModel read themselves: never passed to the
# architecture. use_sync_bn only changes training.
ARCH_OWN_KEYS = ("name", "class_num", "use_sync_bn", "use_ml_decoder", "infer_add_softmax",
                 "infer_output_key", "infer_model_name")


@dataclass(frozen=True)
class TrainingConfig:
    """What a training config says about the model it trained."""

    path: Path
    model_name: str  # Arch.name, or for a distillation config the exported part's name
    arguments: dict[str, Any]  # the other keys, as the constructor gets them
    where: str  # "CONFIG's Arch" or "CONFIG's Arch.models.Student": for messages
    class_num: int | None = None  # None: not written (PaddleClas's default, 1000)
    image_shape: tuple[int, int, int] | None = None
    preprocess: PreprocessConfig | None = None
    topk: int | None = None
    label_file: str | None = None  # Infer.PostProcess.class_id_map_file, as written
    paddlex_name: str | None = None  # Global.pdx_model_name: PaddleX's name for the model
    part: str | None = None  # a distillation config's exported model
    parts: tuple[str, ...] = ()
    part_named: bool = False  # the part was asked for or named by Arch.infer_model_name
    notes: tuple[str, ...] = ()  # what the config asks that ppinfer does another way


def find_config(path: str | Path) -> Path:
    """``path``, or the ``config.yaml`` of a PaddleX training output folder (given as the
    folder or as its ``best_model/``)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for folder in (path, path.parent):
        if (folder / OUTPUT_CONFIG).is_file():
            return folder / OUTPUT_CONFIG
    raise ConfigError(f"-c {path} is a folder without {OUTPUT_CONFIG} (what PaddleX's training "
                      "output holds): pass the training config file.")


def read_training_config(path: str | Path, part: str | None = None) -> TrainingConfig:
    """Read the training config at ``path`` (a file, or a PaddleX output folder). ``part``
    picks the model of a distillation config (default: its ``infer_model_name``, else
    Student)."""
    path = find_config(path)
    doc = _load(path)
    arch = _section(doc, "Arch", path, required=True)
    glob = _section(doc, "Global", path)
    infer = _section(doc, "Infer", path)
    if "class_num" not in arch and "class_num" in glob:
        # PaddleClas's Engine copies the deprecated Global.class_num into Arch.
        arch = {**arch, "class_num": glob["class_num"]}
    if glob.get("use_multilabel", False) is not False:
        raise ConfigError(f"{path} trains a multi-label model (Global.use_multilabel), which "
                          "PaddleClas exports with a sigmoid; ppinfer's exports end in softmax: "
                          "export it with PaddleClas's tools/export_model.py.")
    name = arch.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}'s Arch has no name: it does not say which architecture "
                          "it trained.")
    # A single model's config (a student's, say) leaves ``part`` to the checkpoint.
    if name in DISTILLATION:
        model = _distillation_part(arch, path, part)
    else:
        model = _single(arch, f"{path}'s Arch")
    preprocess, topk, label_file = _infer(infer, path)
    pdx_name = glob.get("pdx_model_name")
    return TrainingConfig(
        path=path, image_shape=_image_shape(glob.get("image_shape"), path),
        preprocess=preprocess, topk=topk, label_file=label_file,
        paddlex_name=pdx_name if isinstance(pdx_name, str) and pdx_name else None,
        notes=_post_process_note(infer, path), **model,
    )


def _load(path: Path) -> dict[str, Any]:
    import yaml

    data = read_regular_file(path, CONFIG_MAX_BYTES, ConfigError, what="training config ")
    try:
        doc = load_yaml(data.decode("utf-8-sig"), scalar_aliases=True)
    except (UnicodeDecodeError, YamlRefused) as exc:
        raise ConfigError(f"Training config {path} is not YAML ppinfer reads "
                          f"({short(exc, 120)}).") from None
    except yaml.YAMLError as exc:  # a syntax error
        reason = short(getattr(exc, "problem", None) or exc, 120)
        raise ConfigError(f"Training config {path} is not valid YAML ({reason}).") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"Training config {path} is not a mapping of sections (Global, "
                          "Arch, ...): it is not a PaddleClas training config.")
    return doc


def _section(doc: dict, name: str, path: Path, required: bool = False) -> dict[str, Any]:
    section = doc.get(name)
    if section is None and not required:
        return {}
    if not isinstance(section, dict):
        what = "no" if section is None else "an unreadable"
        raise ConfigError(f"Training config {path} has {what} {name} section: it is not a "
                          "PaddleClas training config.")
    return section


def _single(arch: dict, where: str) -> dict[str, Any]:
    _check_export_keys(arch, where)
    return {
        "model_name": arch["name"],
        "arguments": {k: v for k, v in arch.items() if k not in ARCH_OWN_KEYS},
        "where": where,
        "class_num": _class_num(arch.get("class_num"), f"{where}.class_num"),
    }


def _check_export_keys(arch: dict, where: str) -> None:
    """The Arch keys that change what PaddleClas exports, where ppinfer cannot follow them."""
    if arch.get("use_ml_decoder", False) is not False:
        raise ConfigError(f"{where} sets use_ml_decoder, a multi-label head ppinfer does not "
                          "build: export with PaddleClas's tools/export_model.py.")
    if arch.get("infer_add_softmax", True) is not True:
        raise ConfigError(f"{where} sets infer_add_softmax: false (an export that ends in "
                          "logits), and ppinfer's exports end in softmax: remove the key.")
    if arch.get("infer_output_key") is not None:
        raise ConfigError(f"{where} sets infer_output_key (a feature extractor's output); "
                          "ppinfer exports classifiers only.")


def _distillation_part(arch: dict, path: Path, part: str | None) -> dict[str, Any]:
    where = f"{path}'s Arch.models"
    parts: dict[str, dict] = {}
    models = arch.get("models")
    for entry in models if isinstance(models, list) else ():
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise ConfigError(f"{where} has an entry that is not one 'Name: {{...}}' mapping.")
        key, spec = next(iter(entry.items()))
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ConfigError(f"{where}.{key} does not name an architecture.")
        parts[str(key)] = spec
    if not parts:
        raise ConfigError(f"{where} lists no models: a {arch['name']} needs them.")
    chosen = part or arch.get("infer_model_name") or DEFAULT_PART
    if chosen not in parts:
        source = ("--checkpoint-part" if part else
                  "Arch.infer_model_name" if arch.get("infer_model_name") else "the default part")
        raise ConfigError(f"{source} {chosen} is not one of {path}'s models "
                          f"({', '.join(parts)}): pass --checkpoint-part with one of them.")
    # DistillationModel passes each model its own keys only: Arch.class_num is not among them.
    model = _single(parts[chosen], f"{where}.{chosen}")
    return {**model, "part": str(chosen), "parts": tuple(parts),
            "part_named": bool(part or arch.get("infer_model_name"))}


def _class_num(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CLASSES:
        raise ConfigError(f"{where} is {short(value, 40)}, not a class count from 1 to "
                          f"{MAX_CLASSES}.")
    return int(value)


def _image_shape(value: Any, path: Path) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 3 and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SIDE
            for v in value)):
        raise ConfigError(f"{path}'s Global.image_shape is {short(value, 40)}, not [C, H, W] "
                          "such as [3, 224, 224].")
    return (value[0], value[1], value[2])


def _infer(infer: dict, path: Path) -> tuple[PreprocessConfig | None, int | None, str | None]:
    """``Infer.transforms`` as ppinfer's preprocessing; ``Infer.PostProcess``'s topk and
    class_id_map_file."""
    preprocess = None
    if infer.get("transforms") is not None:
        try:
            preprocess = PreprocessConfig.from_paddleclas_ops(infer["transforms"])
        except PreprocessConfigError as exc:
            raise ConfigError(f"{path}'s Infer.transforms: {exc}.") from None
    post = infer.get("PostProcess")
    post = post if isinstance(post, dict) else {}
    topk = post.get("topk")
    if topk is not None and not (isinstance(topk, int) and not isinstance(topk, bool)
                                 and topk >= 1):
        raise ConfigError(f"{path}'s Infer.PostProcess.topk is {short(topk, 40)}, not a "
                          "positive whole number.")
    label_file = post.get("class_id_map_file")
    return preprocess, topk, label_file if isinstance(label_file, str) and label_file else None


def _post_process_note(infer: dict, path: Path) -> tuple[str, ...]:
    """A post-process other than a top-k (PULC's ThreshOutput) shows the same scores another
    way: said, not followed."""
    post = infer.get("PostProcess")
    post = post if isinstance(post, dict) else {}
    name = post.get("func") if post.get("name") == "DistillationPostProcess" else post.get("name")
    if name in (None, "Topk"):
        return ()
    return (f"{path}'s Infer.PostProcess is {short(name, 40)}, which ppinfer does not apply: "
            "predict shows the top-k of the same scores.",)
