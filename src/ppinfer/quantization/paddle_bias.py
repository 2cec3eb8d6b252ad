"""Bias correction for Paddle's int8 (``analysis``): what :mod:`~ppinfer.quantization.onnx_bias`
does for ONNX Runtime, on the Paddle program ``PostTrainingQuantization`` leaves.

Rounding weights and activations to int8 shifts each convolution's mean output a little, per
channel, and the shifts add up through the network. Convolution by convolution in program order,
the mean per channel of what reaches the convolution's batch norm in the quantized program (run
by Paddle's executor, its quantize / dequantize ops simulating int8, everything before already
corrected) is measured on the first 16 calibration images against the float program's, and the batch
norm's running mean takes the difference: ``(x + d - mean) == (x - (mean - d))``, so the
correction costs nothing at run time (Paddle Inference folds the batch norm into the
convolution). Convolutions without a batch norm after them keep their outputs as they are.

One at a time, because correcting all at once counts every upstream shift twice; each step runs
the quantized program only as far as the convolution it corrects (the executor prunes the rest).
"""

from __future__ import annotations

import numpy as np

BATCH = 8
IMAGES = 16  # of the calibration images: each step runs them once; on Lite0 16 measured
# better than 64 (KL from fp32 0.0036 against 0.0069, 4.5 minutes) and 8 (0.0047)
CONVS = ("conv2d", "depthwise_conv2d")
QDQ = ("quantize_linear", "dequantize_linear")


def correct_biases(paddle, executor, scope, program, float_program, float_scope,
                   input_name: str, images: np.ndarray) -> int:
    """Correct the batch norms' running means of the quantized ``program`` in ``scope`` (in
    place) against ``float_program`` in ``float_scope``; return how many convolutions."""
    targets = _targets(program)
    if not targets:
        return 0
    program, float_program = _unfetched(program), _unfetched(float_program)
    images = images[:IMAGES]
    float_names = [conv_out for conv_out, _, _ in targets]
    wanted = _channel_means(paddle, executor, float_scope, float_program, input_name,
                            float_names, images)
    for (_, bn_input, mean_name), reference in zip(targets, wanted):
        measured = _channel_means(paddle, executor, scope, program, input_name, [bn_input],
                                  images)[0]
        tensor = scope.find_var(mean_name).get_tensor()
        mean = np.asarray(tensor)
        tensor.set((mean - (reference - measured)).astype(mean.dtype), paddle.CPUPlace())
    return len(targets)


def _targets(program) -> list[tuple[str, str, str]]:
    """(the convolution's output, the batch norm's input, the batch norm's running mean) for
    every convolution whose output reaches a batch norm, directly or through a quantize /
    dequantize pair, in program order."""
    block = program.global_block()
    producer = {name: op for op in block.ops for name in op.output_arg_names}
    targets = []
    for op in block.ops:
        if op.type != "batch_norm":
            continue
        bn_input = op.input("X")[0]
        source = producer.get(bn_input)
        while source is not None and source.type in QDQ:
            source = producer.get(source.input("X")[0])
        if source is not None and source.type in CONVS:
            targets.append((source.output("Output")[0], bn_input, op.input("Mean")[0]))
    return targets


def _unfetched(program):
    """A copy of ``program`` without its fetch ops (the executor prunes only programs whose
    fetches it adds itself)."""
    program = program.clone(for_test=True)
    block = program.global_block()
    for index in reversed(range(len(block.ops))):
        if block.ops[index].type == "fetch":
            block._remove_op(index)
    return program


def _channel_means(paddle, executor, scope, program, input_name: str, names: list[str],
                   images: np.ndarray) -> list[np.ndarray]:
    """The named variables averaged per channel over ``images``."""
    sums = [0.0] * len(names)
    with paddle.static.scope_guard(scope):
        for start in range(0, len(images), BATCH):
            values = executor.run(program, feed={input_name: images[start : start + BATCH]},
                                  fetch_list=names, use_prune=True)
            sums = [total + np.asarray(value).mean(axis=(2, 3), dtype=np.float64).sum(axis=0)
                    for total, value in zip(sums, values)]
    return [total / len(images) for total in sums]
