"""PP-LCNet x0_25 ... x2_5, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/legendary_models/pp_lcnet.py``
with the defaults its ``PPLCNet_x*`` factories and ``ppcls/configs/ImageNet/PPLCNet/*.yaml`` use
(``act: hardswish``, ``use_last_conv``, ``class_expand`` 1280, dropout 0.2, strides 2,2,2,2,2).
The sublayer attributes are PaddleClas's and every variable is named after its state-dict key
(``models/keyed.py``), so a PaddleClas ``PPLCNet_x1_0_pretrained.pdparams`` loads as it is:

* ``conv1``: 3x3 stride-2 stem (``conv1.conv.weight``, ``conv1.bn._mean``, ...);
* ``blocks2`` ... ``blocks6``: depthwise-separable blocks ``blocks5.3.dw_conv``, ``.pw_conv``,
  and in ``blocks6`` a squeeze-excite ``blocks6.0.se.conv1|conv2`` (with biases);
* head: global pool, ``last_conv`` (1x1 to 1280, no bias, no batch norm), hardswish, dropout,
  ``fc``.

Math worth knowing: the squeeze-excite gate is ``paddle.nn.Hardsigmoid``'s (slope 1/6, offset
0.5; MobileNetV3's PaddleClas code uses 0.2), its width ``channels // 4`` without rounding;
batch norm epsilon 1e-5; the head dropout is ``downscale_in_infer``, so at inference it
multiplies the features by 0.8.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.mobilenet_v3 import make_divisible
from ppinfer.models.registry import register_model

STEM_CHANNELS = 16
SE_REDUCTION = 4
SE_GATE_SLOPE = 1.0 / 6.0  # paddle.nn.Hardsigmoid's default, which PaddleClas's PP-LCNet uses
SE_GATE_OFFSET = 0.5
CLASS_EXPAND = 1280
DROPOUT = 0.2

# Depthwise-separable blocks per stage: (kernel, in channels, out channels, stride, SE) at x1.0.
STAGES: dict[str, tuple[tuple[int, int, int, int, bool], ...]] = {
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 2, False), (3, 64, 64, 1, False)),
    "blocks4": ((3, 64, 128, 2, False), (3, 128, 128, 1, False)),
    "blocks5": ((3, 128, 256, 2, False),) + ((5, 256, 256, 1, False),) * 5,
    "blocks6": ((5, 256, 512, 2, True), (5, 512, 512, 1, True)),
}

# PaddleClas name -> width scale; PaddleX calls them PP-LCNet_x*.
SCALES = {
    "x0_25": 0.25, "x0_35": 0.35, "x0_5": 0.5, "x0_75": 0.75,
    "x1_0": 1.0, "x1_5": 1.5, "x2_0": 2.0, "x2_5": 2.5,
}


class ConvBNLayer(nn.Layer):
    """Conv (no bias) + batch norm + hardswish."""

    def __init__(
        self, in_channels: int, kernel: int, out_channels: int, stride: int, key: str,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = keyed.conv2d(in_channels, out_channels, kernel, f"{key}.conv",
                                 stride=stride, groups=groups)
        self.bn = keyed.batch_norm(out_channels, f"{key}.bn")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return F.hardswish(self.bn(self.conv(x)))


class SEModule(nn.Layer):
    """Channel gate: pool, 1x1 conv down by 4 + relu, 1x1 conv up + hard sigmoid, multiply."""

    def __init__(self, channels: int, key: str) -> None:
        super().__init__()
        mid = channels // SE_REDUCTION
        self.conv1 = keyed.conv2d(channels, mid, 1, f"{key}.conv1", bias=True)
        self.conv2 = keyed.conv2d(mid, channels, 1, f"{key}.conv2", bias=True)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        gate = F.relu(self.conv1(F.adaptive_avg_pool2d(x, 1)))
        gate = F.hardsigmoid(self.conv2(gate), slope=SE_GATE_SLOPE, offset=SE_GATE_OFFSET)
        return x * gate


class DepthwiseSeparable(nn.Layer):
    """Depthwise ``kernel`` conv (stride here), optional SE, then pointwise 1x1 conv."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, kernel: int, use_se: bool,
        key: str,
    ) -> None:
        super().__init__()
        self.dw_conv = ConvBNLayer(in_channels, kernel, in_channels, stride, f"{key}.dw_conv",
                                   groups=in_channels)
        self.se = SEModule(in_channels, f"{key}.se") if use_se else None
        self.pw_conv = ConvBNLayer(in_channels, 1, out_channels, 1, f"{key}.pw_conv")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw_conv(x)


# PaddleClas's PPLCNet constructor arguments that change the network, with its defaults (a
# training config's ``Arch`` section may set them: PULC's models change strides, drop the last
# conv, or train without dropout). ``lr_mult_list`` only scales learning rates: accepted.
ARGUMENTS = {"dropout_prob": DROPOUT, "class_expand": CLASS_EXPAND,
             "stride_list": (2, 2, 2, 2, 2), "use_last_conv": True, "act": "hardswish",
             "lr_mult_list": (1.0,) * 6}


def _stride(value):
    """PaddleClas's stride: an int, or [h, w] (PULC's text models keep the width)."""
    return tuple(value) if isinstance(value, (list, tuple)) else int(value)


class PPLCNet(nn.Layer):
    """PP-LCNet at width ``scale``; returns logits ``[N, class_num]``."""

    def __init__(self, scale: float, class_num: int = 1000, *, dropout_prob=DROPOUT,
                 class_expand: int = CLASS_EXPAND, stride_list=(2, 2, 2, 2, 2),
                 use_last_conv: bool = True, act: str = "hardswish", lr_mult_list=None) -> None:
        super().__init__()
        if act != "hardswish":
            raise ValueError(f"act {act!r}: ppinfer's PP-LCNet implements hardswish only")
        if len(stride_list) != 5:
            raise ValueError(f"stride_list needs 5 strides, not {len(stride_list)}")
        strides = [_stride(v) for v in stride_list]
        with fresh_parameter_names():
            self.conv1 = ConvBNLayer(3, 3, make_divisible(STEM_CHANNELS * scale), strides[0],
                                     "conv1")
            for number, (stage, blocks) in enumerate(STAGES.items(), start=2):
                layers = [
                    DepthwiseSeparable(make_divisible(cin * scale), make_divisible(cout * scale),
                                       strides[number - 2] if i == 0 and number > 2 else stride,
                                       kernel, se, f"{stage}.{i}")
                    for i, (kernel, cin, cout, stride, se) in enumerate(blocks)
                ]
                self.add_sublayer(stage, nn.Sequential(*layers))
            features = make_divisible(STAGES["blocks6"][-1][2] * scale)
            self.last_conv = (keyed.conv2d(features, class_expand, 1, "last_conv")
                              if use_last_conv else None)
            # downscale_in_infer: inference multiplies by 1 - p (PaddleClas's Dropout); no
            # dropout at all without the last conv, or when a config says null
            self.dropout = (nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
                            if use_last_conv and dropout_prob is not None else None)
            self.fc = keyed.linear(class_expand if use_last_conv else features, class_num, "fc")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        for stage in STAGES:
            x = getattr(self, stage)(x)
        x = F.adaptive_avg_pool2d(x, 1)
        if self.last_conv is not None:
            x = F.hardswish(self.last_conv(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(paddle.flatten(x, start_axis=1))


def _register(suffix: str, scale: float) -> None:
    def factory(class_num: int = 1000, **arguments) -> nn.Layer:
        arguments.pop("lr_mult_list", None)
        return PPLCNet(scale, class_num, **arguments)

    factory.__name__ = factory.__qualname__ = f"PPLCNet_{suffix}"
    factory.__doc__ = f"PP-LCNet at width {scale} (PaddleX: PP-LCNet_{suffix})."
    register_model(paddlex_name=f"PP-LCNet_{suffix}", arguments=ARGUMENTS)(factory)


for _suffix, _scale in SCALES.items():
    _register(_suffix, _scale)
