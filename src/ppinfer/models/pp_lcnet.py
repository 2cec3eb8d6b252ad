"""PP-LCNet x0_25 ... x2_5, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/legendary_models/pp_lcnet.py``,
with every argument of its constructor that changes the model (:data:`PARAMS`): ``dropout_prob``
(default 0.2), ``class_expand`` (1280), ``stride_list`` (2,2,2,2,2; PULC's text-line model
strides [2, 1] to keep width), ``use_last_conv`` (true; PULC's image-orientation model has no
head conv) and ``act`` (hardswish; relu, relu6).
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
multiplies the features by ``1 - dropout_prob`` (0.8 by default).
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.arguments import (
    FEATURE_OUTPUTS,
    TRAINING,
    Param,
    boolean,
    by_name,
    channels,
    default_only,
    one_of,
    probability,
    strides,
)
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.mobilenet_v3 import make_divisible
from ppinfer.models.registry import register_model

STEM_CHANNELS = 16
SE_REDUCTION = 4
SE_GATE_SLOPE = 1.0 / 6.0  # paddle.nn.Hardsigmoid's default, which PaddleClas's PP-LCNet uses
SE_GATE_OFFSET = 0.5
ACTIVATIONS = {"hardswish": F.hardswish, "relu": F.relu, "relu6": F.relu6}

# Depthwise-separable blocks per stage: (kernel, in channels, out channels, stride, SE) at x1.0.
STAGES: dict[str, tuple[tuple[int, int, int, int, bool], ...]] = {
    "blocks2": ((3, 16, 32, 1, False),),
    "blocks3": ((3, 32, 64, 2, False), (3, 64, 64, 1, False)),
    "blocks4": ((3, 64, 128, 2, False), (3, 128, 128, 1, False)),
    "blocks5": ((3, 128, 256, 2, False),) + ((5, 256, 256, 1, False),) * 5,
    "blocks6": ((5, 256, 512, 2, True), (5, 512, 512, 1, True)),
}

# PaddleClas's PPLCNet(...) keywords. A stride is an int or [height, width]: PaddleClas writes
# stride_list[0] into the stem and the others into the first block of blocks3 ... blocks6.
PARAMS: tuple[Param, ...] = (
    Param("dropout_prob", 0.2, check=probability, unseen=True),
    Param("class_expand", 1280, check=channels),
    Param("stride_list", [2, 2, 2, 2, 2], check=strides(5), unseen=True),
    Param("use_last_conv", True, check=boolean),
    Param("act", "hardswish", check=one_of(*ACTIVATIONS), unseen=True),
    by_name("stages_pattern", list(STAGES)),
    default_only("stop_after", None),
    *TRAINING,
    *FEATURE_OUTPUTS,
)

# PaddleClas name -> width scale; PaddleX calls them PP-LCNet_x*.
SCALES = {
    "x0_25": 0.25, "x0_35": 0.35, "x0_5": 0.5, "x0_75": 0.75,
    "x1_0": 1.0, "x1_5": 1.5, "x2_0": 2.0, "x2_5": 2.5,
}


Stride = int | list[int]  # [height, width] for PULC's text-line models


class ConvBNLayer(nn.Layer):
    """Conv (no bias) + batch norm + ``act``."""

    def __init__(
        self, in_channels: int, kernel: int, out_channels: int, stride: Stride, key: str,
        act: str, groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = keyed.conv2d(in_channels, out_channels, kernel, f"{key}.conv",
                                 stride=stride, groups=groups)
        self.bn = keyed.batch_norm(out_channels, f"{key}.bn")
        self._act = ACTIVATIONS[act]

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._act(self.bn(self.conv(x)))


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
        self, in_channels: int, out_channels: int, stride: Stride, kernel: int, use_se: bool,
        key: str, act: str,
    ) -> None:
        super().__init__()
        self.dw_conv = ConvBNLayer(in_channels, kernel, in_channels, stride, f"{key}.dw_conv",
                                   act, groups=in_channels)
        self.se = SEModule(in_channels, f"{key}.se") if use_se else None
        self.pw_conv = ConvBNLayer(in_channels, 1, out_channels, 1, f"{key}.pw_conv", act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw_conv(x)


class PPLCNet(nn.Layer):
    """PP-LCNet at width ``scale``; returns logits ``[N, class_num]``. The other arguments are
    PaddleClas's (:data:`PARAMS`)."""

    def __init__(
        self, scale: float, class_num: int = 1000, *, dropout_prob: float = 0.2,
        class_expand: int = 1280, stride_list: tuple[Stride, ...] = (2, 2, 2, 2, 2),
        use_last_conv: bool = True, act: str = "hardswish",
    ) -> None:
        super().__init__()
        self._act = ACTIVATIONS[act]
        with fresh_parameter_names():
            self.conv1 = ConvBNLayer(3, 3, make_divisible(STEM_CHANNELS * scale),
                                     stride_list[0], "conv1", act)
            for stage, blocks in STAGES.items():
                self.add_sublayer(stage, self._stage(stage, blocks, scale, stride_list, act))
            features = make_divisible(STAGES["blocks6"][-1][2] * scale)
            self.last_conv = self.dropout = None
            if use_last_conv:
                self.last_conv = keyed.conv2d(features, class_expand, 1, "last_conv")
                self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
                features = class_expand
            self.fc = keyed.linear(features, class_num, "fc")

    @staticmethod
    def _stage(stage: str, blocks: tuple, scale: float, stride_list, act: str) -> nn.Sequential:
        # blocks3 ... blocks6 take their first stride from stride_list[1:] (blocks2's is 1).
        first = stride_list[int(stage[-1]) - 2] if stage != "blocks2" else None
        return nn.Sequential(*[
            DepthwiseSeparable(make_divisible(cin * scale), make_divisible(cout * scale),
                               first if i == 0 and first is not None else stride, kernel, se,
                               f"{stage}.{i}", act)
            for i, (kernel, cin, cout, stride, se) in enumerate(blocks)
        ])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        for stage in STAGES:
            x = getattr(self, stage)(x)
        x = F.adaptive_avg_pool2d(x, 1)
        if self.last_conv is not None:
            x = self.dropout(self._act(self.last_conv(x)))
        return self.fc(paddle.flatten(x, start_axis=1))


def _register(suffix: str, scale: float) -> None:
    def factory(class_num: int = 1000, **arguments) -> nn.Layer:
        return PPLCNet(scale, class_num, **arguments)

    factory.__name__ = factory.__qualname__ = f"PPLCNet_{suffix}"
    factory.__doc__ = f"PP-LCNet at width {scale} (PaddleX: PP-LCNet_{suffix})."
    register_model(paddlex_name=f"PP-LCNet_{suffix}",
                   params=(*PARAMS, by_name("scale", scale)))(factory)


for _suffix, _scale in SCALES.items():
    _register(_suffix, _scale)
