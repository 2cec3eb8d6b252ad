"""int8 for ``onnxruntime``: ONNX Runtime's static quantization of the ONNX conversion.

The float model is the ONNX file the onnxruntime engine runs (paddle2onnx's conversion, cached
and checked against Paddle Inference: :func:`ppinfer.engines.onnxruntime.onnx_model_path`).
``onnxruntime.quantization.quant_pre_process`` optimizes it (fusions, shapes) so that the
quantize / dequantize pairs land where ONNX Runtime fuses them into int8 kernels; then
``quantize_static`` calibrates activation ranges on the calibration images (the range holding
99.999% of the values seen),
quantizes weights per channel (int8) and activations as uint8, in the QDQ format,
:mod:`~ppinfer.quantization.onnx_bias` corrects the biases the rounding shifts, and the
result is saved as ``inference.onnx``, which the onnxruntime engine runs as it is.

It keeps in float the convolutions :mod:`~ppinfer.quantization.float_layers` names that read
float maps: the stem and those fed by it alone (on EfficientNet-Lite0 the stem and the first
depthwise convolution). It costs no speed: ONNX Runtime runs the float prefix as it is and
quantizes once, where it meets the first int8 convolution; the int8 scores' mean KL divergence
from fp32 on 112 held-out views falls from 0.0064 to 0.0022, at the same speed. A float
convolution behind an int8 one (Lite0's second depthwise) stays int8: there ONNX Runtime
converts back and forth around it and quantizes its weights per tensor when it meets one
behind a ``DequantizeLinear``, which cost half the int8 speed for no top-1 gained
(BENCHMARKS.md, "int8 vs fp32").

onnxruntime ships its quantization tools (the ``onnx`` extra); they read models with the
``onnx`` package, which the ``quantize`` extra brings.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np

from ppinfer.modelfiles.source import ModelSource
from ppinfer.quantization.float_layers import RULE, Conv, kept_float
from ppinfer.quantization.onnx_bias import correct_biases

ENGINE = "onnxruntime"
TOOL = "onnxruntime.quantization.quantize_static"
FILES = ("inference.onnx",)
# activation ranges: the range holding this share of the values seen (Paddle's `hist` is the
# same rule); with the bias correction it measured KL 0.0064 against MinMax's 0.0076 on Lite0
PERCENTILE = 99.999


def problem(source: ModelSource) -> str | None:
    """Why this tool cannot quantize ``source`` (one sentence), or None."""
    from ppinfer.engines.onnxruntime import INSTALL_HINT, converter_problem
    from ppinfer.runtime.paddle_env import package_version, paddle_env

    if importlib.util.find_spec("onnxruntime") is None:
        return INSTALL_HINT
    for package in ("onnx", "ml_dtypes"):  # onnxruntime.quantization imports both
        if importlib.util.find_spec(package) is None:
            return (f"Quantizing for onnxruntime needs the {package} package: install it with "
                    "pip install 'ppinfer[onnx,quantize]'.")
    if source.layout.kind not in ("pir", "legacy", "seed"):
        return f"The onnxruntime engine cannot convert the {source.layout.describe()}."
    return converter_problem(package_version("paddle2onnx"), paddle_env().version,
                             source.layout.kind)


def quantize(source: ModelSource, calibration: np.ndarray, out: Path) -> dict:
    """Write the int8 ``inference.onnx`` into ``out``; return the settings used."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ppinfer.engines.onnxruntime import onnx_model_path
    from ppinfer.runtime.paddle_env import package_version
    from ppinfer.runtime.quiet import captured_output

    float_model = onnx_model_path(source.layout)
    with tempfile.TemporaryDirectory(prefix="ppinfer-ort-quant-") as tmp, captured_output():
        prepared = Path(tmp) / "prepared.onnx"
        # no symbolic shape inference: it needs sympy, and the shapes here are all static
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
        kept = _kept_float(prepared)
        quantize_static(
            str(prepared), str(out / FILES[0]), _Reader(_input_name(prepared), calibration),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": PERCENTILE},
            # the scores stay float too: a quantized softmax gives them in steps of 1/255
            nodes_to_exclude=kept + _softmax_nodes(prepared),
        )
        corrected = correct_biases(prepared, out / FILES[0], calibration)
    return {"format": "QDQ", "calibration": f"percentile {PERCENTILE}",
            "weights": "int8 per channel",
            "activations": "uint8",
            "kept_float": {"rule": RULE + ", read from the image through float ops only",
                           "ops": kept},
            "bias_correction": f"per channel, {corrected} convolutions one at a time",
            "onnxruntime": package_version("onnxruntime"),
            "paddle2onnx": package_version("paddle2onnx")}


def _kept_float(path: Path) -> list[str]:
    """The Conv nodes :func:`kept_float` keeps in float that read float maps: the image, or
    (through activations) the output of another one kept."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    heights = {value.name: _height(value) for value in [*graph.input, *graph.value_info]}
    weights = {init.name: init for init in graph.initializer}
    image = graph.input[0].name
    convs = []
    for node in graph.node:
        if node.op_type == "Conv":
            weight = weights.get(node.input[1])
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            convs.append(Conv(node.name, node.input[0] == image,
                              group > 1 and weight is not None and weight.dims[1] == 1,
                              heights.get(node.input[0])))
    candidates = set(kept_float(convs, heights.get(image)))
    float_maps, kept = {image}, []
    for node in graph.node:  # in topological order, as ONNX keeps them
        if node.input and node.input[0] in float_maps:
            if node.name in candidates:
                kept.append(node.name)
                float_maps.update(node.output)
            elif node.op_type in _ACTIVATIONS:
                float_maps.update(node.output)
    return kept


# what follows a convolution without making ONNX Runtime quantize its input
_ACTIVATIONS = frozenset({"Clip", "Relu", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid"})


def _height(value) -> int | None:
    """The height of an NCHW value's shape, None when unknown or dynamic."""
    dims = value.type.tensor_type.shape.dim
    return (dims[2].dim_value or None) if len(dims) == 4 else None


def _softmax_nodes(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type == "Softmax"]


def _input_name(path: Path) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


class _Reader:
    """The calibration images one at a time, as ``quantize_static``'s CalibrationDataReader
    (``get_next`` until None)."""

    def __init__(self, input_name: str, images: np.ndarray) -> None:
        self._feeds = iter([{input_name: images[i : i + 1]} for i in range(len(images))])

    def get_next(self) -> dict | None:
        return next(self._feeds, None)
