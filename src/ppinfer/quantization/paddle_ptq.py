"""int8 for ``analysis``: Paddle's own post-training quantization.

``paddle.static.quantization.PostTrainingQuantization`` calibrates activation ranges on the
calibration images (``hist``: the range holding 99.999% of the values seen), quantizes conv and
matmul weights per output channel, and saves a ``.pdmodel`` program with ``quantize_linear`` /
``dequantize_linear`` ops. Paddle Inference runs that program through oneDNN's int8 kernels at
``--precision int8`` (``enable_mkldnn_int8``); at fp32 it simulates the int8 arithmetic, 6-20x
slower (BENCHMARKS.md, "int8 on the CPU"). The few convolutions
:mod:`~ppinfer.quantization.float_layers` names stay in float (``skip_tensor_list``, by weight
name; on EfficientNet-Lite0 the stem and the first two depthwise convolutions). Before saving,
:mod:`~ppinfer.quantization.paddle_bias` corrects the shift rounding leaves in each
convolution's mean output (into its batch norm's running mean).

It reads legacy ``ProgramDesc`` programs only (on Paddle 3 it runs under the legacy IR), so a
PIR ``.json`` model must be exported with ``--format legacy`` first. Works on Paddle 2.6 and 3.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np

from ppinfer.modelfiles.source import ModelSource
from ppinfer.quantization.calibration import batches
from ppinfer.quantization.float_layers import RULE, Conv, kept_float
from ppinfer.quantization.paddle_bias import correct_biases

ENGINE = "analysis"
TOOL = "paddle.static.quantization.PostTrainingQuantization"
ALGO = "hist"
BATCH = 8
# the ops whose inputs and weights are quantized (oneDNN runs these in int8)
OP_TYPES = ("conv2d", "depthwise_conv2d", "mul", "matmul", "matmul_v2")
LAYOUTS = ("legacy", "seed", "uncombined")
FILES = ("inference.pdmodel", "inference.pdiparams")


def problem(source: ModelSource) -> str | None:
    """Why this tool cannot quantize ``source`` (one sentence), or None."""
    kind = source.layout.kind
    if kind == "pir":
        return ("Paddle's post-training quantization reads .pdmodel programs, and this model is "
                "a PIR .json program: export it with --format legacy, or quantize with "
                "--engine openvino or onnxruntime.")
    if kind not in LAYOUTS:
        return f"Paddle's post-training quantization cannot read the {source.layout.describe()}."
    return None


def quantize(source: ModelSource, calibration: np.ndarray, out: Path) -> dict:
    """Write the int8 program and parameters into ``out``; return the settings used."""
    from ppinfer.runtime.paddle_env import legacy_ir_guard, package_version, static_mode
    from ppinfer.runtime.paddle_import import import_paddle
    from ppinfer.runtime.quiet import captured_output

    paddle = import_paddle()
    from paddle.static.quantization import PostTrainingQuantization

    layout = source.layout
    feeds = batches(calibration, BATCH)
    scope = paddle.static.Scope()  # its own: the model's variables stay out of the global one
    with static_mode(), legacy_ir_guard(), paddle.static.scope_guard(scope), \
            captured_output(), contextlib.redirect_stdout(sys.stderr):  # its progress bars
        executor = paddle.static.Executor(paddle.CPUPlace())
        float_scope = paddle.static.Scope()
        float_program, float_feeds = _load_float(paddle, executor, float_scope, source)
        kept = _kept_float(float_program, float_feeds)
        ptq = PostTrainingQuantization(
            executor=executor,
            scope=scope,
            model_dir=str(layout.root),
            model_filename=layout.program.name,
            params_filename=layout.params.name if layout.params is not None else None,
            data_loader=feeds_loader(paddle, source.input_name, feeds),
            batch_nums=len(feeds),
            algo=ALGO,
            quantizable_op_type=list(OP_TYPES),
            weight_quantize_type="channel_wise_abs_max",
            onnx_format=True,  # quantize_linear ops: what Paddle Inference's int8 pass reads
            round_type="round",
            skip_tensor_list=kept,
        )
        program = ptq.quantize()
        corrected = correct_biases(paddle, executor, scope, program, float_program, float_scope,
                                   source.input_name, calibration)
        ptq.save_quantized_model(str(out), model_filename=FILES[0], params_filename=FILES[1])
    return {"algo": ALGO, "weights": "per-channel abs max", "ops": list(OP_TYPES),
            "kept_float": {"rule": RULE, "ops": kept},
            "bias_correction": f"per channel, {corrected} convolutions one at a time",
            "paddle": package_version("paddlepaddle") or package_version("paddlepaddle-gpu")}


def _load_float(paddle, executor, scope, source: ModelSource):
    """The float program and its feed names, its parameters loaded into ``scope``."""
    layout = source.layout
    with paddle.static.scope_guard(scope):
        program, feeds, _ = paddle.static.load_inference_model(
            str(layout.root), executor, model_filename=layout.program.name,
            params_filename=layout.params.name if layout.params is not None else None)
    return program, feeds


def _kept_float(program, feeds: list[str]) -> list[str]:
    """The weight names of the convolutions :func:`kept_float` keeps in float, read from the
    legacy program (its variables carry their static shapes)."""
    block = program.global_block()
    convs = []
    for op in block.ops:
        if op.type not in ("conv2d", "depthwise_conv2d"):
            continue
        name = op.input("Input")[0]
        channels = block.var(name).shape[1]
        depthwise = op.type == "depthwise_conv2d" or (
            channels > 1 and op.attr("groups") == channels)
        convs.append(Conv(op.input("Filter")[0], name in feeds, depthwise,
                          _height(block.var(name).shape)))
    return kept_float(convs, _height(block.var(feeds[0]).shape))


def _height(shape) -> int | None:
    """The height of an NCHW shape, None when dynamic."""
    return int(shape[2]) if len(shape) == 4 and shape[2] > 0 else None


def feeds_loader(paddle, input_name: str, feeds: list[np.ndarray]):
    """The calibration batches as PostTrainingQuantization reads its ``data_loader``: called
    for feed dicts, ``len()`` for the batch count. Paddle 2.6 also requires an instance of
    ``paddle.io.DataLoader``, so it is one, without DataLoader's own machinery (no workers,
    no dataset)."""

    class Feeds(paddle.io.DataLoader):
        def __init__(self) -> None:  # DataLoader's own __init__ wants a dataset: not needed
            self.input_name, self.feeds = input_name, feeds

        def __len__(self) -> int:
            return len(self.feeds)

        def __call__(self):
            for feed in self.feeds:
                yield {self.input_name: feed}

    return Feeds()
