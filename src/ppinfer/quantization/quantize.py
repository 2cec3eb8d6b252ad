"""``ppinfer quantize``: a float model -> an int8 model directory for one engine, verified.

Each engine gets its own runtime's tool (one module each): Paddle's post-training quantization
for ``analysis``, NNCF for ``openvino``, ONNX Runtime's static quantization for
``onnxruntime``. The steps:

1. check what can be checked before any work: the engine's tool is installed and reads this
   model, the output may be written;
2. split the calibration images (calibration.py) and preprocess them as ``predict`` does;
3. run the tool into a hidden directory beside the output, with the model card
   (``inference.yml``: preprocessing, labels, and a ``quantization`` record of how it was made);
4. verify: the int8 model against the float model at fp32 on the held-out images (verify.py),
   the figures written into the card;
5. publish the directory atomically (:mod:`ppinfer.io.publish`, as ``export`` does).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ppinfer import __version__
from ppinfer.errors import ConfigError, ExportError, ModelFormatError, UnknownNameError
from ppinfer.io.publish import make_temp_dir, swap_into_place, sync_dir, tidy_after_killed_exports
from ppinfer.modelfiles.formats import PADDLE_KINDS
from ppinfer.modelfiles.output_dir import check_output_dir
from ppinfer.modelfiles.source import ModelSource, resolve_source
from ppinfer.quantization import calibration as calib
from ppinfer.quantization.card import write_quantized_card
from ppinfer.quantization.verify import Verification, scores, verify
from ppinfer.runtime.interrupts import deferred_interrupts

# engine -> the module holding its tool (problem(), quantize(), ENGINE, TOOL)
TOOLS = {
    "analysis": "ppinfer.quantization.paddle_ptq",
    "openvino": "ppinfer.quantization.openvino_nncf",
    "onnxruntime": "ppinfer.quantization.onnxruntime_static",
}


@dataclass
class QuantizeResult:
    output: Path
    model_name: str
    engine: str
    tool: str
    calibration: calib.CalibrationSet
    verification: Verification
    seconds: float

    @property
    def meets_target(self) -> bool:
        return self.verification.meets_target

    def describe(self) -> str:
        return (f"Quantized {self.model_name} for {self.engine} ({self.tool}) to {self.output} "
                f"in {self.seconds:.0f}s: {self.calibration.describe()}.")


def tool_module(engine: str):
    if engine not in TOOLS:
        raise UnknownNameError(f"ppinfer quantize has no tool for the {engine!r} engine: use "
                               f"one of {', '.join(TOOLS)}.")
    return importlib.import_module(TOOLS[engine])


def quantize_model(
    model: str | os.PathLike,
    images: list[str | os.PathLike],
    output: str | os.PathLike,
    *,
    engine: str = "analysis",
    samples: int = calib.DEFAULT_SAMPLES,
    held_out_share: float = calib.HELD_OUT_SHARE,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> QuantizeResult:
    """Quantize the float model directory ``model`` for ``engine`` on ``images``; ``progress``
    gets one line once the images are read, before the long part starts."""
    started = time.perf_counter()
    tool = tool_module(engine)
    source = _float_source(model)
    problem = tool.problem(source)
    if problem:
        raise ConfigError(problem)
    output = Path(output)
    tidy_after_killed_exports(output)
    _check_output(output, source, force)
    images_set = calib.split_images(images, samples, held_out_share)
    images_set = calib.load(images_set, source.preprocess)
    if progress is not None:
        progress(f"Quantizing {source.display_name} for {engine} with {tool.TOOL} on "
                 f"{len(images_set.calibration)} calibration images, then verifying on "
                 f"{len(images_set.held_out)} held out...")
    with deferred_interrupts() as interrupt:
        reference = scores(engine, source, "fp32", images_set.held_out_batch)
        interrupt()
        tmp = _temp_dir(output)
        try:
            settings = tool.quantize(source, images_set.calibration_batch, tmp)
            interrupt()
            record = _record(tool, settings, source, images_set)
            write_quantized_card(source, tmp, record)
            quantized = resolve_source(model=str(tmp), prefer="legacy")
            checked = verify(reference, scores(engine, quantized, "int8",
                                               images_set.held_out_batch))
            write_quantized_card(source, tmp, {**record, **checked.to_json_dict()})
            sync_dir(tmp)
            interrupt()  # the last point where Ctrl-C keeps what was at the output before
            swap_into_place(tmp, output)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return QuantizeResult(output, source.display_name, engine, tool.TOOL, images_set, checked,
                          time.perf_counter() - started)


def _float_source(model: str | os.PathLike) -> ModelSource:
    source = resolve_source(model=os.fspath(model), prefer="legacy")
    layout = source.layout
    if source.quantized_for:
        made = source.float_model
        raise ConfigError(f"{os.fspath(model)} is already an int8 model (ppinfer quantize made "
                          f"it for {source.quantized_for}"
                          f"{f' from {made}' if made else ''}): pass the float model instead.")
    if layout is None or not layout.is_inference_model:
        raise ModelFormatError(f"{os.fspath(model)} holds no exported model (inference.json or "
                               "inference.pdmodel): export one with ppinfer export, then "
                               "quantize that directory.")
    if layout.kind not in PADDLE_KINDS:
        raise ModelFormatError(f"ppinfer quantize takes an exported Paddle model, and the "
                               f"{layout.describe()} is not one: pass the directory ppinfer "
                               "export wrote.")
    return source


def _record(tool, settings: dict, source: ModelSource, images: calib.CalibrationSet) -> dict:
    """The card's ``quantization`` section: how the model was made, from what."""
    return {
        "engine": tool.ENGINE,
        "tool": tool.TOOL,
        "settings": settings,
        "samples": len(images.calibration),
        "calibration_sha256": images.digest(),
        "held_out": len(images.held_out),
        "float_model": str(source.layout.root.resolve()),
        "ppinfer_version": __version__,
        "quantized_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _check_output(output: Path, source: ModelSource, force: bool) -> None:
    """Refuse, before any work, an output that is the float model itself, or one export
    would refuse (``--force`` replaces a model, nothing else)."""
    if output.resolve() == source.layout.root.resolve():
        raise ConfigError("-o is the float model's own directory: write the int8 model "
                          "beside it, e.g. -o MODEL-int8.")
    check_output_dir(output, force, command="quantize")


def _temp_dir(output: Path) -> Path:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        return make_temp_dir(output)
    except OSError as exc:
        raise ExportError(f"Cannot write beside {output}: {exc.strerror or exc}; choose a "
                          "writable -o.") from None
