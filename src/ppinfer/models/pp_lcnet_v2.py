"""PP-LCNetV2 small, base and large, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6
``ppcls/arch/backbone/legendary_models/pp_lcnet_v2.py`` with the defaults its ``PPLCNetV2_*``
factories and ``ppcls/configs/ImageNet/PPLCNetV2/*.yaml`` use (``act: relu``, ``use_last_conv``,
``class_expand`` 1280, dropout 0.2). Sublayer attributes are PaddleClas's and every variable is
named after its state-dict key (``models/keyed.py``), so a PaddleClas
``PPLCNetV2_base_pretrained.pdparams`` loads as it is:

* ``stem.0``: 3x3 stride-2 conv; ``stem.1``: a depthwise-separable block;
* ``stages.{0-3}.{j}``: depthwise-separable blocks (the first of a stage stride 2, doubling the
  width). Stages 3 and 4 are "rep" blocks: the depthwise conv is a sum of branches
  ``dw_conv_list.{n}`` (kernels 5, 3 and, at stride 1, 1; each conv + batch norm, no
  activation), then the activation. Stage 3 gates with a squeeze-excite ``se`` (relu, sigmoid)
  and splits the pointwise conv in two (``pw_conv_1`` to half the width, ``pw_conv_2``); stage 4
  adds the input where the shape allows;
* head: global pool, ``last_conv`` (1x1 to 1280, no bias, no batch norm), activation, dropout
  (``downscale_in_infer``: x0.8 at inference), ``fc``.

A rep block also holds ``dw_conv`` (a depthwise conv with bias): PaddleClas fills it only when it
re-parameterises a model for export and never runs it before; it is kept for the state dict's
keys, and the branches are summed as training ran them. Quirk kept: a plain (non-rep) block's
depthwise conv always uses relu, whatever ``act`` says (PaddleClas's ConvBNLayer default).
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
    one_of,
)
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.legacy_safe import sigmoid
from ppinfer.models.mobilenet_v3 import make_divisible
from ppinfer.models.registry import register_model

# in channels, depthwise kernel, split pointwise, rep, SE, shortcut   (PaddleClas's NET_CONFIG)
STAGES = ((64, 3, False, False, False, False), (128, 3, False, False, False, False),
          (256, 5, True, True, True, False), (512, 5, False, True, False, True))
# PaddleClas name suffix -> (width scale, blocks per stage); PaddleX calls them PP-LCNetV2_*.
SIZES = {"small": (0.75, (2, 2, 4, 2)), "base": (1.0, (2, 2, 6, 2)),
         "large": (1.25, (2, 2, 8, 2))}
CLASS_EXPAND = 1280
DROPOUT = 0.2
ACTIVATIONS = {"relu": F.relu, "hardswish": F.hardswish, "relu6": F.relu6,
               "leaky_relu": lambda x: F.leaky_relu(x, negative_slope=0.1)}
# PaddleClas's PPLCNetV2 constructor arguments a training config can set, with their defaults.
# Not ``dropout_prob``: PaddleClas's factories pass 0.2 themselves, and a config's value beside
# it makes them fail (a keyword given twice), so no PP-LCNetV2 trained with another.
PARAMS: tuple[Param, ...] = (
    Param("use_last_conv", True, check=boolean),
    Param("class_expand", CLASS_EXPAND, check=channels),
    Param("act", "relu", check=one_of("relu", "hardswish", "relu6", "leaky_relu")),
    # PaddleClas's factories pass dropout_prob=0.2 themselves: a config's value beside it fails
    by_name("dropout_prob", 0.2),
    by_name("scale", None), by_name("depths", None), by_name("stages_pattern", None),
    *TRAINING, *FEATURE_OUTPUTS,
)


class ConvBNLayer(nn.Layer):
    """Conv (no bias) + batch norm, then ``act`` (None: no activation)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, key: str,
                 groups: int = 1, act: str | None = "relu") -> None:
        super().__init__()
        self.conv = keyed.conv2d(in_channels, out_channels, kernel, f"{key}.conv",
                                 stride=stride, groups=groups)
        self.bn = keyed.batch_norm(out_channels, f"{key}.bn")
        self._act = ACTIVATIONS[act] if act else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.bn(self.conv(x))
        return self._act(x) if self._act is not None else x


class SEModule(nn.Layer):
    """Channel gate: pool, 1x1 conv down by 4 + ``act``, 1x1 conv up + sigmoid, multiply."""

    def __init__(self, channels: int, key: str, act: str) -> None:
        super().__init__()
        self.conv1 = keyed.conv2d(channels, channels // 4, 1, f"{key}.conv1", bias=True)
        self.conv2 = keyed.conv2d(channels // 4, channels, 1, f"{key}.conv2", bias=True)
        self._act = ACTIVATIONS[act]

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        gate = self._act(self.conv1(F.adaptive_avg_pool2d(x, 1)))
        return x * sigmoid(self.conv2(gate))


class RepDepthwiseSeparable(nn.Layer):
    """Depthwise conv (a sum of branches when ``rep``), optional SE, pointwise conv (split in
    two when ``split_pw``), + input when ``shortcut`` and the shape allows."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, kernel: int, key: str,
                 act: str, split_pw: bool = False, rep: bool = False, use_se: bool = False,
                 shortcut: bool = False) -> None:
        super().__init__()
        self.shortcut = shortcut and stride == 1 and in_channels == out_channels
        if rep:
            kernels = [k for k in range(kernel, 0, -2) if not (k == 1 and stride != 1)]
            self.dw_conv_list = nn.LayerList([
                ConvBNLayer(in_channels, in_channels, k, stride, f"{key}.dw_conv_list.{n}",
                            groups=in_channels, act=None)
                for n, k in enumerate(kernels)
            ])
            # PaddleClas's re-parameterised conv: in the state dict, never run here
            self.dw_conv = keyed.conv2d(in_channels, in_channels, kernel, f"{key}.dw_conv",
                                        stride=stride, groups=in_channels, bias=True)
        else:
            self.dw_conv_list = None
            self.dw_conv = ConvBNLayer(in_channels, in_channels, kernel, stride,
                                       f"{key}.dw_conv", groups=in_channels)
        self._act = ACTIVATIONS[act]
        self.se = SEModule(in_channels, f"{key}.se", act) if use_se else None
        if split_pw:
            half = int(out_channels * 0.5)
            self.pw_conv_1 = ConvBNLayer(in_channels, half, 1, 1, f"{key}.pw_conv_1", act=act)
            self.pw_conv_2 = ConvBNLayer(half, out_channels, 1, 1, f"{key}.pw_conv_2", act=act)
            self.pw_conv = None
        else:
            self.pw_conv = ConvBNLayer(in_channels, out_channels, 1, 1, f"{key}.pw_conv", act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        identity = x
        if self.dw_conv_list is not None:
            y = self.dw_conv_list[0](x)
            for branch in self.dw_conv_list[1:]:
                y = y + branch(x)
            x = self._act(y)
        else:
            x = self.dw_conv(x)
        if self.se is not None:
            x = self.se(x)
        x = self.pw_conv(x) if self.pw_conv is not None else self.pw_conv_2(self.pw_conv_1(x))
        return x + identity if self.shortcut else x


class PPLCNetV2(nn.Layer):
    """PP-LCNetV2 at width ``scale`` with ``depths`` blocks per stage; logits ``[N, class_num]``."""

    def __init__(self, scale: float, depths: tuple[int, ...], class_num: int = 1000, *,
                 dropout_prob: float | None = DROPOUT, use_last_conv: bool = True,
                 class_expand: int = CLASS_EXPAND, act: str = "relu") -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"act {act!r}: ppinfer's PP-LCNetV2 implements "
                             f"{', '.join(ACTIVATIONS)}")
        with fresh_parameter_names():
            stem = make_divisible(32 * scale)
            self.stem = nn.Sequential(
                ConvBNLayer(3, stem, 3, 2, "stem.0", act=act),
                RepDepthwiseSeparable(stem, make_divisible(64 * scale), 1, 3, "stem.1", act))
            self.stages = nn.LayerList([
                nn.Sequential(*[
                    RepDepthwiseSeparable(
                        make_divisible((cin if j == 0 else cin * 2) * scale),
                        make_divisible(cin * 2 * scale), 2 if j == 0 else 1, kernel,
                        f"stages.{i}.{j}", act, split_pw, rep, se, shortcut)
                    for j in range(depths[i])
                ])
                for i, (cin, kernel, split_pw, rep, se, shortcut) in enumerate(STAGES)
            ])
            features = make_divisible(STAGES[-1][0] * 2 * scale)
            self.last_conv = (keyed.conv2d(features, class_expand, 1, "last_conv", padding=0)
                              if use_last_conv else None)
            self._act = ACTIVATIONS[act]
            # downscale_in_infer: inference multiplies by 1 - p, as PaddleClas's Dropout does
            self.dropout = (nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
                            if use_last_conv and dropout_prob else None)
            self.fc = keyed.linear(class_expand if use_last_conv else features, class_num, "fc")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = F.adaptive_avg_pool2d(x, 1)
        if self.last_conv is not None:
            x = self._act(self.last_conv(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(paddle.flatten(x, start_axis=1))


def _register(size: str) -> None:
    scale, depths = SIZES[size]

    def factory(class_num: int = 1000, **arguments) -> nn.Layer:
        return PPLCNetV2(scale, depths, class_num, **arguments)

    factory.__name__ = factory.__qualname__ = f"PPLCNetV2_{size}"
    factory.__doc__ = f"PP-LCNetV2 {size}: width {scale} (PaddleX: PP-LCNetV2_{size})."
    register_model(paddlex_name=f"PP-LCNetV2_{size}", params=PARAMS)(factory)


for _size in SIZES:
    _register(_size)
