"""MobileNetV1 x0.25 ... x1.0, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/legendary_models/
mobilenet_v1.py`` (what ``ppcls/configs/ImageNet/MobileNetV1/*.yaml`` build). Sublayer
attributes are PaddleClas's and every variable is named after its state-dict key
(``models/keyed.py``), so a PaddleClas ``MobileNetV1_pretrained.pdparams`` loads as it is:

* ``conv``: 3x3 stride-2 conv to ``int(32 * scale)``, batch norm, relu;
* ``blocks.{0-12}``: a 3x3 ``depthwise_conv`` and a 1x1 ``pointwise_conv``, each conv (no
  bias) + batch norm + relu; strides 1, 2, 1, 2, 1, 2, 1 x5, 2, 1 on the depthwise conv;
* head: global pool, ``fc`` (no dropout).

Widths are ``int(c * scale)`` without rounding; batch norm epsilon 1e-5.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.arguments import FEATURE_OUTPUTS, TRAINING, by_name
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.registry import register_model

# (depthwise channels, pointwise out channels, depthwise stride) per block at x1.0.
BLOCKS = ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
          (256, 512, 2)) + ((512, 512, 1),) * 5 + ((512, 1024, 2), (1024, 1024, 1))
# PaddleClas name -> width scale; PaddleX calls MobileNetV1 MobileNetV1_x1_0.
SCALES = {"MobileNetV1_x0_25": 0.25, "MobileNetV1_x0_5": 0.5, "MobileNetV1_x0_75": 0.75,
          "MobileNetV1": 1.0}


class ConvBNLayer(nn.Layer):
    """Conv (no bias) + batch norm + relu."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, key: str,
                 groups: int = 1) -> None:
        super().__init__()
        self.conv = keyed.conv2d(in_channels, out_channels, kernel, f"{key}.conv",
                                 stride=stride, groups=groups)
        self.bn = keyed.batch_norm(out_channels, f"{key}.bn")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.relu(self.bn(self.conv(x)))


class DepthwiseSeparable(nn.Layer):
    def __init__(self, in_channels: int, channels: int, out_channels: int, stride: int,
                 key: str) -> None:
        super().__init__()
        # PaddleClas's groups are int(channels * scale) too: depthwise at every width
        self.depthwise_conv = ConvBNLayer(in_channels, channels, 3, stride,
                                          f"{key}.depthwise_conv", groups=channels)
        self.pointwise_conv = ConvBNLayer(channels, out_channels, 1, 1, f"{key}.pointwise_conv")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class MobileNetV1(nn.Layer):
    """MobileNetV1 at width ``scale``; returns logits ``[N, class_num]``."""

    def __init__(self, scale: float, class_num: int = 1000) -> None:
        super().__init__()
        with fresh_parameter_names():
            channels = int(32 * scale)
            self.conv = ConvBNLayer(3, channels, 3, 2, "conv")
            blocks = []
            for i, (mid, out, stride) in enumerate(BLOCKS):
                blocks.append(DepthwiseSeparable(channels, int(mid * scale), int(out * scale),
                                                 stride, f"blocks.{i}"))
                channels = int(out * scale)
            self.blocks = nn.Sequential(*blocks)
            self.fc = keyed.linear(channels, class_num, "fc")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.adaptive_avg_pool2d(self.blocks(self.conv(x)), 1)
        return self.fc(paddle.flatten(x, start_axis=1))


def _register(name: str, scale: float) -> None:
    def factory(class_num: int = 1000) -> nn.Layer:
        return MobileNetV1(scale, class_num)

    paddlex = name if "_x" in name else f"{name}_x1_0"
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"MobileNetV1 at width {scale} (PaddleX: {paddlex})."
    params = (by_name("scale", None), by_name("stages_pattern", None), *TRAINING,
              *FEATURE_OUTPUTS)
    register_model(paddlex_name=paddlex, params=params)(factory)


for _name, _scale in SCALES.items():
    _register(_name, _scale)
