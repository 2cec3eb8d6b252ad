"""int8 for ``openvino``: NNCF's post-training quantization of an OpenVINO model.

The float model is what the openvino engine reads (the ``.pdmodel``, or the cached ONNX
conversion of a PIR program), converted by ``openvino.convert_model`` (its front-end
transformations fold batch norms into the convolutions first). ``nncf.quantize`` then sets
activation ranges from the calibration images (min/max, symmetric, the ``PERFORMANCE``
preset), weights per channel, corrects the biases the rounding shifts (fast bias correction),
and leaves in float the few convolutions :mod:`~ppinfer.quantization.float_layers` names
(NNCF's ``ignored_scope``: on EfficientNet-Lite0 the stem and the first two depthwise
convolutions, the three NNCF's own accuracy-aware pass puts back). The result is saved as an
OpenVINO IR (``inference.xml`` + ``inference.bin``) whose ``FakeQuantize`` ops the CPU plugin
runs in int8.

NNCF comes with the ``quantize`` extra (``pip install 'ppinfer[quantize]'``); it needs no torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ppinfer.config import RunConfig
from ppinfer.modelfiles.source import ModelSource
from ppinfer.quantization.float_layers import RULE, Conv, kept_float

ENGINE = "openvino"
TOOL = "nncf.quantize"
FILES = ("inference.xml", "inference.bin")
INSTALL_HINT = ("Quantizing for openvino needs NNCF and OpenVINO: install them with "
                "pip install 'ppinfer[quantize]'.")


def problem(source: ModelSource) -> str | None:
    """Why this tool cannot quantize ``source`` (one sentence), or None."""
    if any(importlib.util.find_spec(m) is None for m in ("nncf", "openvino")):
        return INSTALL_HINT
    if source.layout.kind not in ("pir", "legacy", "seed"):
        return f"The openvino engine cannot read the {source.layout.describe()}."
    return None


def quantize(source: ModelSource, calibration: np.ndarray, out: Path) -> dict:
    """Write the int8 IR into ``out``; return the settings used."""
    from ppinfer.engines.openvino import OpenVinoEngine
    from ppinfer.runtime.paddle_env import package_version
    from ppinfer.runtime.quiet import captured_output

    with captured_output():  # NNCF's progress bars and its version warnings
        import nncf
        import openvino as ov

        engine = OpenVinoEngine(source, RunConfig(device="cpu"))
        model = ov.convert_model(str(engine.model_file()))
        # one image per item: NNCF gathers its statistics image by image
        dataset = nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))])
        kept = _kept_float(model)
        quantized = nncf.quantize(model, dataset, subset_size=len(calibration),
                                  preset=nncf.QuantizationPreset.PERFORMANCE,
                                  fast_bias_correction=True,
                                  ignored_scope=nncf.IgnoredScope(names=kept))
        ov.save_model(quantized, str(out / FILES[0]), compress_to_fp16=False)
    return {"preset": "performance", "fast_bias_correction": True,
            "kept_float": {"rule": RULE, "ops": kept},
            "read_by": "openvino.convert_model", "nncf": package_version("nncf"),
            "openvino": package_version("openvino")}


def _kept_float(model) -> list[str]:
    """The names of ``model``'s convolutions :func:`kept_float` keeps in float."""
    convs = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind not in ("Convolution", "GroupConvolution"):
            continue
        source = op.input(0).get_source_output().get_node()
        convs.append(Conv(op.get_friendly_name(), source.get_type_name() == "Parameter",
                          kind == "GroupConvolution", _height(op.input(0).get_partial_shape())))
    return kept_float(convs, _height(model.inputs[0].get_partial_shape()))


def _height(shape) -> int | None:
    """The height of an NCHW shape, None when dynamic."""
    return shape[2].get_length() if shape.rank.is_static and shape[2].is_static else None
