"""What a path on disk holds: every model layout ppinfer knows, detected in one place.

Layouts (``ModelLayout.kind``):
- ``pir``: ``NAME.json`` + ``NAME.pdiparams`` (Paddle 3 ``save_inference_model``)
- ``legacy``: ``NAME.pdmodel`` + ``NAME.pdiparams`` (Paddle 2 ``save_inference_model``)
- ``seed``: ``model`` + ``params`` (PaddleClas 1.x's combined ``save_inference_model``; the
  name is kept because ``export --format seed`` scripts use it)
- ``uncombined``: ``model`` or ``__model__`` + one file per variable
- ``persistable``: one file per variable, no program (needs the architecture to run)
- ``pdparams``: a ``.pdparams`` state dict (needs the architecture to run)
- ``openvino``: ``NAME.xml`` + ``NAME.bin`` (an OpenVINO IR; ``ppinfer quantize --engine
  openvino`` writes one)
- ``onnx``: ``NAME.onnx`` (``ppinfer quantize --engine onnxruntime`` writes one)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ppinfer.errors import ModelFormatError

CARD_NAMES = ("inference.yml", "inference.yaml")
PROGRAM_NAMES = ("model", "__model__")
PADDLE_KINDS = ("pir", "legacy", "seed", "uncombined")
# programs of the peer runtimes, run by their engines only (no Paddle program beside them)
PEER_KINDS = ("openvino", "onnx")
INFERENCE_KINDS = (*PADDLE_KINDS, *PEER_KINDS)
CHECKPOINT_KINDS = ("persistable", "pdparams")
# how messages name a layout kind
KIND_NAMES = {"seed": "PaddleClas 1.x", "uncombined": "per-variable (uncombined)",
              "openvino": "OpenVINO IR", "onnx": "ONNX"}


def kind_phrase(kind: str) -> str:
    """``kind`` as a user reads it, with its article: "an ONNX model", "a pir model"."""
    name = KIND_NAMES.get(kind, kind)
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name} model"


# what each kind holds, for lists such as `ppinfer engines`
KIND_FILES = {"pir": "inference.json", "legacy": "inference.pdmodel",
              "seed": "model + params (PaddleClas 1.x)", "uncombined": "uncombined (per-variable)",
              "persistable": "persistable dir", "pdparams": ".pdparams",
              "openvino": "inference.xml + .bin (OpenVINO IR)", "onnx": "inference.onnx"}
_NOT_VARIABLES = {".json", ".pdmodel", ".pdiparams", ".yml", ".yaml", ".txt", ".md", ".pdopt",
                  ".info", ".log", ".pdparams", ".onnx", ".xml", ".bin"}


@dataclass(frozen=True)
class ModelLayout:
    kind: str
    root: Path
    program: Path | None = None
    params: Path | None = None  # combined parameters file; None for per-variable layouts

    @property
    def ir(self) -> str:
        """'pir' for a ``.json`` program, else 'legacy' (ProgramDesc protobuf)."""
        return "pir" if self.kind == "pir" else "legacy"

    @property
    def is_inference_model(self) -> bool:
        return self.kind in INFERENCE_KINDS

    @property
    def card(self) -> Path | None:
        """The model card beside the program. Whatever the name holds (a directory, a FIFO, a
        dangling link) is returned, so reading it refuses it rather than silently using
        default preprocessing."""
        for name in CARD_NAMES:
            if os.path.lexists(self.root / name):
                return self.root / name
        return None

    def describe(self) -> str:
        parts = [p.name for p in (self.program, self.params) if p is not None]
        kind = KIND_NAMES.get(self.kind, self.kind)
        return f"{kind} model ({' + '.join(parts) or self.root.name}) in {self.root}"


def _variable_files(directory: Path) -> list[Path]:
    return [
        p for p in sorted(directory.iterdir())
        if p.is_file() and p.name not in PROGRAM_NAMES and p.name != "params"
        and p.suffix not in _NOT_VARIABLES and not p.name.startswith(".")
    ]


def _is_file_like(path: Path) -> bool:
    """Present and not a directory: a FIFO named ``model`` is found here and refused when read,
    rather than passed over as if missing."""
    return os.path.lexists(path) and not path.is_dir()


def _pairs(directory: Path, suffix: str) -> list[tuple[Path, Path]]:
    pairs = []
    for program in sorted(directory.glob(f"*{suffix}")):
        params = program.with_suffix(".pdiparams")
        if os.path.lexists(params):  # not a regular file: verify_layout says so
            pairs.append((program, params))
    return pairs


def _found(directory: Path) -> str:
    names = sorted(p.name for p in directory.iterdir())
    if not names:
        return "nothing"
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return shown


# Which program to run when a directory holds both (ppinfer's exports on Paddle 3): the legacy
# one. Paddle Inference runs it as fast or faster on every row measured (7-42% on 4 of 6) and
# loads it sooner; OpenVINO reads it without converting. Paddle 2.6 runs only that one.
RUN_PREFERENCE = "legacy"

# Where a PaddleX training run leaves the exported model, from its output folder or from
# its best_model/ folder (which also holds the best_model.pdparams checkpoint).
TRAINING_OUTPUT_MODELS = ("inference", "best_model/inference")


def detect_directory(directory: Path, prefer: str = "pir") -> ModelLayout:
    """The layout of ``directory``; ``prefer`` picks between a .json and a .pdmodel program.

    A PaddleX training output (``output/`` or ``output/best_model/``) holding no inference
    model of its own stands for the one its training exported into ``inference/``."""
    if not directory.exists():
        raise ModelFormatError(f"Model directory {directory} does not exist: check --model.")
    if not directory.is_dir():
        raise ModelFormatError(f"{directory} is a file, not a model directory: pass its folder.")
    layout = _detect_here(directory, prefer) if _holds_inference_model(directory) else None
    if layout is not None:
        return layout
    for inner in TRAINING_OUTPUT_MODELS:
        if _holds_inference_model(directory / inner):
            return detect_directory(directory / inner, prefer)
    return _detect_here(directory, prefer)


def _holds_inference_model(directory: Path) -> bool:
    """A program with its parameters directly in ``directory`` (cheap: names only)."""
    if not directory.is_dir():
        return False
    if _pairs(directory, ".json") or _pairs(directory, ".pdmodel"):
        return True
    return any(_is_file_like(directory / n) for n in PROGRAM_NAMES) and (
        _is_file_like(directory / "params") or bool(_variable_files(directory)))


def _detect_here(directory: Path, prefer: str) -> ModelLayout:
    candidates = {
        "pir": _pairs(directory, ".json"),
        "legacy": _pairs(directory, ".pdmodel"),
    }
    order = ("pir", "legacy") if prefer == "pir" else ("legacy", "pir")
    for kind in order:
        if candidates[kind]:
            # Prefer the conventional inference.* name when several models share a folder.
            program, params = sorted(candidates[kind], key=lambda p: p[0].stem != "inference")[0]
            return ModelLayout(kind, directory, program, params)
    peer = _peer_layout(directory)
    if peer is not None:
        return peer
    programs = [directory / n for n in PROGRAM_NAMES if _is_file_like(directory / n)]
    variables = _variable_files(directory)
    if programs and _is_file_like(directory / "params"):
        return ModelLayout("seed", directory, programs[0], directory / "params")
    if programs and variables:
        return ModelLayout("uncombined", directory, programs[0], None)
    loose_params = sorted(directory.glob("*.pdiparams")) + (
        [directory / "params"] if (directory / "params").is_file() else []
    )
    if loose_params:
        raise ModelFormatError(
            f"Model directory {directory} holds parameters ({loose_params[0].name}) but no "
            "program file (expected model, *.pdmodel or *.json beside them): copy the program in."
        )
    program_files = [*programs, *sorted(directory.glob("*.pdmodel")),
                     *(p for p in sorted(directory.glob("*.json")) if _is_pir_program(p))]
    if program_files:
        raise ModelFormatError(
            f"Model directory {directory} holds a program ({program_files[0].name}) but no "
            "parameters (expected params, *.pdiparams or one file per variable): copy them in."
        )
    pdparams = sorted(directory.glob("*.pdparams"))
    if pdparams:
        return ModelLayout("pdparams", directory, None, pdparams[0])
    if variables:
        return ModelLayout("persistable", directory, None, None)
    raise ModelFormatError(
        f"{directory} holds no model: found {_found(directory)}; expected inference.json or "
        "*.pdmodel with *.pdiparams, model + params, or a persistable checkpoint."
    )


def _peer_layout(directory: Path) -> ModelLayout | None:
    """An OpenVINO IR (``.xml`` with its ``.bin``) or an ``.onnx`` file, ``inference.*`` first."""
    irs = [(xml, xml.with_suffix(".bin")) for xml in sorted(directory.glob("*.xml"))
           if os.path.lexists(xml.with_suffix(".bin"))]
    onnx = [(path, None) for path in sorted(directory.glob("*.onnx"))]
    for kind, found in (("openvino", irs), ("onnx", onnx)):
        if found:
            program, params = sorted(found, key=lambda p: p[0].stem != "inference")[0]
            return ModelLayout(kind, directory, program, params)
    return None


def _is_pir_program(path: Path) -> bool:
    """A PIR program begins ``{"base_code":{"magic":"pir"``; PaddleX's train_result.json and
    other JSON files beside a checkpoint are not programs."""
    if not path.is_file():  # a FIFO would block the read: let verify_layout refuse it
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        return True  # unreadable: verify_layout says why if it is used
    return b'"magic":"pir"' in head.replace(b" ", b"")


def detect_files(program: Path, params: Path | None) -> ModelLayout:
    """The layout named by explicit program / params files (``predict -m`` / ``-p``)."""
    if not os.path.lexists(program):
        raise ModelFormatError(f"Program file {program} does not exist: check -m/--model-file.")
    if program.is_dir():
        raise ModelFormatError(f"Program file {program} is a directory: pass the program file "
                               "with -m, or the directory with --model.")
    if params is None:
        if program.suffix in (".json", ".pdmodel"):
            params = program.with_suffix(".pdiparams")
        elif program.name in PROGRAM_NAMES and (program.parent / "params").is_file():
            params = program.parent / "params"
        elif program.name in PROGRAM_NAMES and _variable_files(program.parent):
            return ModelLayout("uncombined", program.parent, program, None)
    if params is None or not params.exists():
        raise ModelFormatError(
            f"Parameters for {program.name} not found{f' at {params}' if params else ''}: "
            "pass them with -p/--params-file."
        )
    if params.is_dir():
        return ModelLayout("uncombined", params, program, None)
    if program.suffix == ".json":
        kind = "pir"
    elif program.suffix == ".pdmodel":
        kind = "legacy"
    else:
        kind = "seed"
    return ModelLayout(kind, program.parent, program, params)


def detect_model(
    model_dir: str | Path | None = None,
    model_file: str | Path | None = None,
    params_file: str | Path | None = None,
    prefer: str = "pir",
) -> ModelLayout:
    """Resolve ``--model`` / ``-d`` with ``-m`` / ``-p`` (file names relative to the dir)."""
    root = Path(model_dir) if model_dir is not None else None
    if model_file is not None:
        program = Path(model_file)
        if root is not None and not program.is_absolute():
            program = root / program
        params = None
        if params_file is not None:
            params = Path(params_file)
            if root is not None and not params.is_absolute():
                params = root / params
        return detect_files(program, params)
    if root is None:
        raise ModelFormatError("No model given: pass --model DIR (or -m FILE -p FILE).")
    if params_file is not None:
        params = Path(params_file)
        if not params.is_absolute():
            params = root / params
        if not params.exists():
            raise ModelFormatError(f"Parameters file {params} does not exist: check -p.")
    return detect_directory(root, prefer)


def verify_layout(layout: ModelLayout) -> None:
    """Check an inference model's files before Paddle loads them; other layouts pass through.

    Paddle loads a truncated parameters file, or the parameters of another class count, without
    complaint and predicts from garbage. This walks the parameters' headers (no tensor data is
    read) against the program's declared parameters and raises :class:`ModelFormatError`
    naming what does not fit. Separate from detection, which looks only at file names.
    """
    if layout.kind not in PADDLE_KINDS or layout.program is None:
        return  # the peer runtimes check their own files when they read them
    from ppinfer.checkpoints.integrity import check_model_files

    check_model_files(layout.program, layout.params, layout.root)


QUANTIZE_OPS = ("quantize_linear", "fake_quantize", "fake_channel_wise_quantize")
# how each peer format spells its int8 ops in the file (ONNX op types, OpenVINO IR layer types)
PEER_QUANTIZE_MARKS = {
    "onnx": (b"QuantizeLinear", b"QLinearConv", b"ConvInteger", b"MatMulInteger"),
    "openvino": (b'type="FakeQuantize"', b'type="FakeConvert"'),
}


def is_quantized(layout: ModelLayout) -> bool:
    """True when the program runs quantize ops (what Paddle Inference's CPU int8 path needs;
    for an ONNX or OpenVINO program, its int8 ops)."""
    from ppinfer.io.safe_io import PROGRAM_MAX_BYTES, read_regular_file

    if layout.kind in PEER_QUANTIZE_MARKS:
        return _mentions(Path(layout.program), PEER_QUANTIZE_MARKS[layout.kind])

    try:
        data = read_regular_file(Path(layout.program), PROGRAM_MAX_BYTES, ModelFormatError)
    except (ModelFormatError, TypeError):
        return False
    if layout.ir == "pir":  # JSON: op names appear only where ops are
        return any(op.encode() in data for op in QUANTIZE_OPS)
    # A ProgramDesc lists every op name it knows in its version map: read the ops themselves.
    from ppinfer.runtime.paddle_core import paddle_core

    core = paddle_core().module
    try:
        desc = core.ProgramDesc(data)
    except Exception:  # not a ProgramDesc: let Paddle Inference say so
        return False
    types = {desc.block(b).op(o).type() for b in range(desc.num_blocks())
             for o in range(desc.block(b).op_size())}
    return any(t.startswith(QUANTIZE_OPS) for t in types)


def _mentions(path: Path, marks: tuple[bytes, ...], block: int = 1 << 22) -> bool:
    """Whether any of ``marks`` occurs in the file (read in blocks: an ONNX file holds its
    weights too)."""
    from ppinfer.io.safe_io import check_regular_file

    overlap = max(len(m) for m in marks) - 1
    tail = b""
    try:
        check_regular_file(path, ModelFormatError)  # a FIFO would block open()
        with open(path, "rb") as fh:
            while chunk := fh.read(block):
                window = tail + chunk
                if any(m in window for m in marks):
                    return True
                tail = window[-overlap:]
    except (OSError, ModelFormatError):
        return False
    return False
