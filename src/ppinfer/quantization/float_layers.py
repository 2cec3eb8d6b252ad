"""The few convolutions that stay in float in an int8 model: the stem convolution (it reads the
image) and the depthwise convolutions that read maps at half the image's size or more.

Chosen by measurement, on calibration images only: NNCF's accuracy-aware quantization
(``nncf.quantize_with_accuracy_control``, putting back in float, one at a time, the operation
whose int8 costs the most agreement with fp32 on the calibration images) puts back exactly
these three on the built-in EfficientNet-Lite0; with them in float the int8 scores' mean KL
divergence from fp32 on held-out views falls from 0.029 to 0.013 (Paddle) and from 0.030 to
0.0046 (NNCF, with its bias correction): BENCHMARKS.md, "int8 vs fp32". They are where
per-tensor activation scales hurt most: the stem reads the image, and the early depthwise
convolutions read 32-96 channels at 112x112 whose ranges differ widely while each channel is
filtered alone, so a channel of small values keeps only a few of the shared int8 steps. They
hold little of the arithmetic (a depthwise convolution is memory-bound), so int8 stays about
2x faster than fp32 at batch 8.
ONNX Runtime's int8 keeps only those that read float maps (the stem, and on Lite0 the first
depthwise convolution): a float convolution behind an int8 one cost half its speed there
(:mod:`~ppinfer.quantization.onnxruntime_static`).

Each tool describes its model's convolutions as :class:`Conv`; :func:`kept_float` names those
to leave out of quantization (Paddle's ``skip_tensor_list``, NNCF's ``ignored_scope``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

RULE = "stem convolution and depthwise convolutions reading maps of at least half the image size"


@dataclass(frozen=True)
class Conv:
    name: str  # what the tool calls it (a weight name, a node name)
    reads_image: bool  # its input is the model's input
    depthwise: bool  # one filter per channel
    input_height: int | None  # None when the model leaves it dynamic


def kept_float(convs: Iterable[Conv], image_height: int | None) -> list[str]:
    """The names of the convolutions among ``convs`` to keep in float (see the module)."""
    kept = []
    for conv in convs:
        early = (image_height is not None and conv.input_height is not None
                 and 2 * conv.input_height >= image_height)
        if conv.reads_image or (conv.depthwise and early):
            kept.append(conv.name)
    return kept
