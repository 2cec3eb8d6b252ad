"""int8 for ``onnxruntime``: ONNX Runtime's static quantization of the ONNX conversion.

The float model is the ONNX file the onnxruntime engine runs (paddle2onnx's conversion, cached
and checked against Paddle Inference: :func:`ppinfer.engines.onnxruntime.onnx_model_path`).
``onnxruntime.quantization.quant_pre_process`` optimizes it (fusions, shapes) so that the
quantize / dequantize pairs land where ONNX Runtime fuses them into int8 kernels; then
``quantize_static`` calibrates activation ranges on the calibration images (min/max),
quantizes weights per channel (int8) and activations as uint8, in the QDQ format, and the
result is saved as ``inference.onnx``, which the onnxruntime engine runs as it is.

The few convolutions :mod:`~ppinfer.quantization.float_layers` names stay float
(``nodes_to_exclude``; on EfficientNet-Lite0 the stem and the first two depthwise convolutions),
and so do their inputs: ``quantize_static`` still quantizes an excluded node's input when the
node before it is quantized, and ONNX Runtime, meeting a float convolution behind a
``DequantizeLinear``, quantizes its weights per tensor when it loads the model (ruinous for a
depthwise convolution: mean KL divergence from fp32 0.048 instead of 0.016). So the ReLU6 clips
are kept as nodes (``QDQKeepRemovableActivations``; the runtime fuses them into the quantize
ops anyway) and each kept convolution reads its float input directly (:func:`_float_inputs`).

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

ENGINE = "onnxruntime"
TOOL = "onnxruntime.quantization.quantize_static"
FILES = ("inference.onnx",)


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
            calibrate_method=CalibrationMethod.MinMax,
            # the scores stay float: a quantized softmax gives them in steps of 1/255
            nodes_to_exclude=_softmax_nodes(prepared) + kept,
            extra_options={"QDQKeepRemovableActivations": True},
        )
        _float_inputs(out / FILES[0], kept)
    return {"format": "QDQ", "calibration": "MinMax", "weights": "int8 per channel",
            "activations": "uint8", "kept_float": {"rule": RULE, "ops": kept},
            "onnxruntime": package_version("onnxruntime"),
            "paddle2onnx": package_version("paddle2onnx")}


def _kept_float(path: Path) -> list[str]:
    """The names of the Conv nodes :func:`kept_float` keeps in float, from the prepared model
    (its shapes inferred)."""
    import onnx

    graph = onnx.shape_inference.infer_shapes(onnx.load(str(path))).graph
    heights = {value.name: _height(value.type.tensor_type.shape)
               for value in (*graph.input, *graph.value_info)}
    weights = {init.name: init.dims for init in graph.initializer}
    image = graph.input[0].name
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        depthwise = group > 1 and list(weights.get(node.input[1], [0, 0]))[1] == 1
        convs.append(Conv(node.name, node.input[0] == image, depthwise,
                          heights.get(node.input[0])))
    return kept_float(convs, heights.get(image))


def _height(shape) -> int | None:
    """The height of an NCHW ONNX shape, None when dynamic or unknown."""
    dims = list(shape.dim)
    return dims[2].dim_value or None if len(dims) == 4 else None


def _float_inputs(path: Path, nodes: list[str]) -> None:
    """Rewire each of ``nodes`` that reads a ``DequantizeLinear(QuantizeLinear(t))`` to read
    ``t`` itself, and save the model at ``path`` again (the pair left unread is dropped by
    ONNX Runtime when it loads the model)."""
    import onnx

    if not nodes:
        return
    model = onnx.load(str(path))
    producer = {output: node for node in model.graph.node for output in node.output}
    for node in model.graph.node:
        if node.name not in nodes:
            continue
        dequantize = producer.get(node.input[0])
        if dequantize is None or dequantize.op_type != "DequantizeLinear":
            continue
        quantize = producer.get(dequantize.input[0])
        if quantize is not None and quantize.op_type == "QuantizeLinear":
            node.input[0] = quantize.input[0]
    onnx.save(model, str(path))


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
