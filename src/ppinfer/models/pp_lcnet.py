"""PP-LCNet x0_25 ... x2_5, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/legendary_models/pp_lcnet.py``;
its constructor's arguments are :data:`ARGUMENTS`, with PaddleClas's defaults (``act: hardswish``,
``use_last_conv``, ``class_expand`` 1280, dropout 0.2, strides 2,2,2,2,2). PULC's models change
them: ``stride_list: [2, [2, 1], [2, 1], [2, 1], [2, 1]]`` (text-line orientation, 80x160
input), ``use_last_conv: false`` (image orientation), ``dropout_prob: 0.0`` (SSLD distillation).
The sublayer attributes are PaddleClas's and every variable is named after its state-dict key
(``models/keyed.py``), so a PaddleClas ``PPLCNet_x1_0_pretrained.pdparams`` loads as it is:

* ``conv1``: 3x3 stride-2 stem (``conv1.conv.weight``, ``conv1.bn._mean``, ...);
* ``blocks2`` ... ``blocks6``: depthwise-separable blocks ``blocks5.3.dw_conv``, ``.pw_conv``,
  and in ``blocks6`` a squeeze-excite ``blocks6.0.se.conv1|conv2`` (with biases);
* head: global pool, ``last_conv`` (1x1 to ``class_expand``, no bias, no batch norm), the
  activation, dropout, ``fc``; without ``use_last_conv``, global pool then ``fc``.

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
    THESEUS_OUTPUTS,
    TRAINING_ONLY,
    Argument,
    boolean,
    channels,
    default_only,
    fixed,
    one_of,
    probability,
    stride_list,
    training,
)
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

# PaddleClas's _create_act: the activations its ``act`` argument names.
ACTIVATIONS = {"hardswish": F.hardswish, "relu": F.relu, "relu6": F.relu6}
DEFAULT_STRIDES = (2, 2, 2, 2, 2)  # the stem's, then the first block's of blocks3 ... blocks6

# PaddleClas's PPLCNet.__init__ and TheseusLayer's keyword arguments (``scale`` is the name's).
ARGUMENTS = (
    Argument("dropout_prob", DROPOUT, check=probability, hidden=True),
    Argument("class_expand", CLASS_EXPAND, check=channels),
    Argument("stride_list", list(DEFAULT_STRIDES), check=stride_list(5), hidden=True),
    Argument("use_last_conv", True, check=boolean),
    Argument("act", "hardswish", check=one_of(*ACTIVATIONS), hidden=True),
    *TRAINING_ONLY,
    training("freeze_befor"),  # sets stop_gradient: training only
    default_only("stop_after", None),  # cuts the network short
    *THESEUS_OUTPUTS,
)

# PaddleClas name -> width scale; PaddleX calls them PP-LCNet_x*.
SCALES = {
    "x0_25": 0.25, "x0_35": 0.35, "x0_5": 0.5, "x0_75": 0.75,
    "x1_0": 1.0, "x1_5": 1.5, "x2_0": 2.0, "x2_5": 2.5,
}


class ConvBNLayer(nn.Layer):
    """Conv (no bias) + batch norm + activation (hardswish unless the config says otherwise)."""

    def __init__(
        self, in_channels: int, kernel: int, out_channels: int, stride: int | list[int],
        key: str, groups: int = 1, act: str = "hardswish",
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
        self, in_channels: int, out_channels: int, stride: int | list[int], kernel: int,
        use_se: bool, key: str, act: str,
    ) -> None:
        super().__init__()
        self.dw_conv = ConvBNLayer(in_channels, kernel, in_channels, stride, f"{key}.dw_conv",
                                   groups=in_channels, act=act)
        self.se = SEModule(in_channels, f"{key}.se") if use_se else None
        self.pw_conv = ConvBNLayer(in_channels, 1, out_channels, 1, f"{key}.pw_conv", act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        return self.pw_conv(x)


class PPLCNet(nn.Layer):
    """PP-LCNet at width ``scale``, built with PaddleClas's constructor arguments (the others
    of :data:`ARGUMENTS` leave the forward alone); returns logits ``[N, class_num]``."""

    def __init__(
        self, scale: float, class_num: int = 1000, dropout_prob: float = DROPOUT,
        class_expand: int = CLASS_EXPAND, stride_list: list | tuple = DEFAULT_STRIDES,
        use_last_conv: bool = True, act: str = "hardswish",
    ) -> None:
        super().__init__()
        self._act = ACTIVATIONS[act]
        with fresh_parameter_names():
            self.conv1 = ConvBNLayer(3, 3, make_divisible(STEM_CHANNELS * scale), stride_list[0],
                                     "conv1", act=act)
            for index, (stage, blocks) in enumerate(STAGES.items()):
                # PaddleClas: stride_list[1:] replaces the first stride of blocks3 ... blocks6.
                first_stride = stride_list[index] if index > 0 else None
                layers = [
                    DepthwiseSeparable(
                        make_divisible(cin * scale), make_divisible(cout * scale),
                        first_stride if i == 0 and first_stride is not None else stride,
                        kernel, se, f"{stage}.{i}", act)
                    for i, (kernel, cin, cout, stride, se) in enumerate(blocks)
                ]
                self.add_sublayer(stage, nn.Sequential(*layers))
            features = make_divisible(STAGES["blocks6"][-1][2] * scale)
            self.last_conv = None
            if use_last_conv:
                self.last_conv = keyed.conv2d(features, class_expand, 1, "last_conv")
                self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
                features = class_expand
            self.fc = keyed.linear(features, class_num, "fc")

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
    names_fix = (fixed("scale", scale), fixed("stages_pattern", None))
    register_model(paddlex_name=f"PP-LCNet_{suffix}", arguments=(*ARGUMENTS, *names_fix))(factory)


for _suffix, _scale in SCALES.items():
    _register(_suffix, _scale)
