"""MobileNetV3 (small and large), with PaddleClas's parameter names and math.

Names, structure and numerics follow PaddleClas ``ppcls/modeling/architectures/mobilenet_v3.py``
(release/2.0), whose dygraph layers keep the ``ParamAttr`` names of the release/1.x static-graph
model, so a PaddleClas checkpoint of either era loads by variable name:

* a conv + batch-norm unit ``P`` owns ``P_weights`` and ``P_bn_{scale,offset,mean,variance}``;
  ``P`` is ``conv1`` (stem), ``conv{i}_{expand,depthwise,linear}`` for block ``i`` = 2, 3, ...
  and ``conv_last`` (the 1x1 conv before pooling);
* the squeeze-excite of block ``i`` owns ``conv{i}_se_{1,2}_{weights,offset}``;
* the head is ``last_1x1_conv_weights`` (no bias, no batch norm) and ``fc_weights``/``fc_offset``.

The sublayer attributes (``conv1``, ``conv2`` ... ``last_second_conv``, ``last_conv``, ``out``)
are release/2.0's too, so its dygraph ``state_dict`` keys match as well. PaddleClas 2.x/3.x's
"legendary" model numbers its blocks instead: :data:`PADDLECLAS_LEGENDARY` reads its keys.

PaddleClas's constructor arguments that change the model are built (:data:`PARAMS`):
``dropout_prob`` (0.2; ``null`` for no dropout layer, as PaddleClas's distillation configs set),
``class_expand`` (the head conv's 1280 channels) and ``inplanes`` (the stem's 16).

Math worth knowing, all as PaddleClas has it: the squeeze-excite gate is
``hardsigmoid(x, slope=0.2, offset=0.5)`` (fluid's default, not the 1/6 of ``paddle.nn``); the
squeeze width is ``channels // 4`` without rounding; batch norm uses epsilon 1e-5; the head
dropout is ``downscale_in_infer``, so at inference it multiplies the features by 0.8 rather than
doing nothing; the 1280-channel head conv is never scaled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import paddle
import paddle.nn.functional as F
from paddle import ParamAttr, nn

from ppinfer.checkpoints.keymap import KeyTable, table_naming
from ppinfer.checkpoints.namings import Naming
from ppinfer.models.arguments import (
    FEATURE_OUTPUTS,
    TRAINING,
    Param,
    by_name,
    channels,
    default_only,
    probability_or_null,
)
from ppinfer.models.layers import fresh_parameter_names, named_batch_norm
from ppinfer.models.registry import register_model

STEM_CHANNELS = 16
SE_REDUCTION = 4
# PaddleClas trained with fluid's hard_sigmoid defaults; paddle.nn's default slope is 1/6.
SE_GATE_SLOPE = 0.2
SE_GATE_OFFSET = 0.5
HEAD_CHANNELS = 1280
DROPOUT = 0.2

# PaddleClas's MobileNetV3(...) keywords (legendary_models/mobilenet_v3.py). ``class_squeeze``
# (the 1x1 conv before pooling) is 960 for large, and the small factories set it to 576
# themselves.
PARAMS: tuple[Param, ...] = (
    Param("dropout_prob", DROPOUT, check=probability_or_null, unseen=True),
    Param("class_expand", HEAD_CHANNELS, check=channels),
    Param("inplanes", STEM_CHANNELS, check=channels),
    by_name("config", None),
    by_name("stages_pattern", None),
    *TRAINING,
    *FEATURE_OUTPUTS,
)


@dataclass(frozen=True)
class Block:
    """One inverted-residual block of the config table."""

    kernel: int
    expand: int
    out: int
    se: bool
    act: str
    stride: int


def _blocks(*rows: tuple) -> tuple[Block, ...]:
    return tuple(Block(*row) for row in rows)


@dataclass(frozen=True)
class Arch:
    blocks: tuple[Block, ...]
    last_channels: int  # output of ``conv_last``, before scaling


#        kernel, expand, out, se, act, stride  (the paper's tables 1 and 2)
ARCHS: dict[str, Arch] = {
    "large": Arch(
        _blocks(
            (3, 16, 16, False, "relu", 1),
            (3, 64, 24, False, "relu", 2),
            (3, 72, 24, False, "relu", 1),
            (5, 72, 40, True, "relu", 2),
            (5, 120, 40, True, "relu", 1),
            (5, 120, 40, True, "relu", 1),
            (3, 240, 80, False, "hardswish", 2),
            (3, 200, 80, False, "hardswish", 1),
            (3, 184, 80, False, "hardswish", 1),
            (3, 184, 80, False, "hardswish", 1),
            (3, 480, 112, True, "hardswish", 1),
            (3, 672, 112, True, "hardswish", 1),
            (5, 672, 160, True, "hardswish", 2),
            (5, 960, 160, True, "hardswish", 1),
            (5, 960, 160, True, "hardswish", 1),
        ),
        last_channels=960,
    ),
    "small": Arch(
        _blocks(
            (3, 16, 16, True, "relu", 2),
            (3, 72, 24, False, "relu", 2),
            (3, 88, 24, False, "relu", 1),
            (5, 96, 40, True, "hardswish", 2),
            (5, 240, 40, True, "hardswish", 1),
            (5, 240, 40, True, "hardswish", 1),
            (5, 120, 48, True, "hardswish", 1),
            (5, 144, 48, True, "hardswish", 1),
            (5, 288, 96, True, "hardswish", 2),
            (5, 576, 96, True, "hardswish", 1),
            (5, 576, 96, True, "hardswish", 1),
        ),
        last_channels=576,
    ),
}

_ACTIVATIONS: dict[str, Callable[[paddle.Tensor], paddle.Tensor]] = {
    "relu": F.relu,
    "hardswish": F.hardswish,
}


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a scaled channel count to a multiple of ``divisor``, never losing more than 10%."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBN(nn.Layer):
    """Conv (no bias) + batch norm + optional activation; parameters named from ``name``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int,
        name: str,
        groups: int = 1,
        act: str | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2D(
            in_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=(kernel - 1) // 2,
            groups=groups,
            weight_attr=ParamAttr(name=f"{name}_weights"),
            bias_attr=False,
        )
        bn = f"{name}_bn"
        self.bn = named_batch_norm(out_channels, bn)
        self._act = _ACTIVATIONS[act] if act else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.bn(self.conv(x))
        return self._act(x) if self._act else x


class SqueezeExcite(nn.Layer):
    """Channel gate: pool, 1x1 conv down by 4 + relu, 1x1 conv up + hard sigmoid, multiply."""

    def __init__(self, channels: int, name: str) -> None:
        super().__init__()
        mid = channels // SE_REDUCTION
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.conv1 = nn.Conv2D(
            channels,
            mid,
            1,
            weight_attr=ParamAttr(name=f"{name}_1_weights"),
            bias_attr=ParamAttr(name=f"{name}_1_offset"),
        )
        self.conv2 = nn.Conv2D(
            mid,
            channels,
            1,
            weight_attr=ParamAttr(name=f"{name}_2_weights"),
            bias_attr=ParamAttr(name=f"{name}_2_offset"),
        )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        gate = F.relu(self.conv1(self.avg_pool(x)))
        gate = F.hardsigmoid(self.conv2(gate), slope=SE_GATE_SLOPE, offset=SE_GATE_OFFSET)
        return x * gate


class ResidualUnit(nn.Layer):
    """Inverted residual: 1x1 expand, depthwise, optional SE, 1x1 linear, + input if same shape."""

    def __init__(self, in_channels: int, mid: int, out: int, block: Block, name: str) -> None:
        super().__init__()
        self.shortcut = block.stride == 1 and in_channels == out
        self.expand_conv = ConvBN(in_channels, mid, 1, 1, f"{name}_expand", act=block.act)
        self.bottleneck_conv = ConvBN(
            mid, mid, block.kernel, block.stride, f"{name}_depthwise", groups=mid, act=block.act
        )
        self.mid_se = SqueezeExcite(mid, f"{name}_se") if block.se else None
        self.linear_conv = ConvBN(mid, out, 1, 1, f"{name}_linear")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.bottleneck_conv(self.expand_conv(x))
        if self.mid_se is not None:
            y = self.mid_se(y)
        y = self.linear_conv(y)
        return x + y if self.shortcut else y


class MobileNetV3(nn.Layer):
    """MobileNetV3 ``arch`` ("large" or "small") at width ``scale``; returns logits. The
    keywords are PaddleClas's (:data:`PARAMS`)."""

    def __init__(
        self, arch: str, scale: float = 1.0, class_num: int = 1000, *,
        dropout_prob: float | None = DROPOUT, class_expand: int = HEAD_CHANNELS,
        inplanes: int = STEM_CHANNELS,
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
        with fresh_parameter_names():
            self._build(ARCHS[arch], scale, class_num, inplanes)
            self._head(ARCHS[arch], scale, class_num, dropout_prob, class_expand)

    def _build(self, cfg: Arch, scale: float, class_num: int, inplanes: int) -> None:
        channels = make_divisible(inplanes * scale)
        self.conv1 = ConvBN(3, channels, 3, 2, "conv1", act="hardswish")

        self._block_names: list[str] = []
        for i, block in enumerate(cfg.blocks, start=2):
            name = f"conv{i}"
            out = make_divisible(scale * block.out)
            unit = ResidualUnit(channels, make_divisible(scale * block.expand), out, block, name)
            self.add_sublayer(name, unit)
            self._block_names.append(name)
            channels = out

        last = make_divisible(scale * cfg.last_channels)
        self.last_second_conv = ConvBN(channels, last, 1, 1, "conv_last", act="hardswish")

    def _head(self, cfg: Arch, scale: float, class_num: int, dropout_prob: float | None,
              class_expand: int) -> None:
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = nn.Conv2D(
            make_divisible(scale * cfg.last_channels),
            class_expand,
            1,
            weight_attr=ParamAttr(name="last_1x1_conv_weights"),
            bias_attr=False,
        )
        # PaddleClas builds no dropout layer for dropout_prob None; p=0 is the identity too.
        self.dropout = (None if dropout_prob is None
                        else nn.Dropout(p=dropout_prob, mode="downscale_in_infer"))
        self.out = nn.Linear(
            class_expand,
            class_num,
            weight_attr=ParamAttr(name="fc_weights"),
            bias_attr=ParamAttr(name="fc_offset"),
        )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        for name in self._block_names:
            x = getattr(self, name)(x)
        x = self.pool(self.last_second_conv(x))
        x = F.hardswish(self.last_conv(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.out(paddle.flatten(x, start_axis=1))


# PaddleClas 2.x/3.x (ppcls/arch/backbone/legendary_models/mobilenet_v3.py) keys, read by the
# table machinery of checkpoints/keymap.py: conv.bn._mean, blocks.3.mid_se.conv1.weight, fc.bias.
PADDLECLAS_LEGENDARY: KeyTable = (
    ("conv.{tail}", "conv1.{tail}"),
    ("blocks.{block}.{tail}", "{block}.{tail}"),
    ("last_second_conv.{tail}", "last_second_conv.{tail}"),
    ("last_conv.{tail}", "last_conv.{tail}"),
    ("fc.{tail}", "out.{tail}"),
)


def paddleclas_namings(arch: str) -> tuple[Naming, ...]:
    """PaddleClas 2.x/3.x's naming of MobileNetV3 ``arch``; 2.0's keys are this module's own."""
    blocks = tuple(f"conv{i}" for i in range(2, len(ARCHS[arch].blocks) + 2))
    return (table_naming("PaddleClas 2.x/3.x structured names", PADDLECLAS_LEGENDARY,
                         block=blocks),)


def params_of(arch: str, scale: float) -> tuple[Param, ...]:
    """PaddleClas's keywords for a factory: small ones set class_squeeze themselves."""
    squeeze = ARCHS[arch].last_channels
    return (*PARAMS, by_name("class_squeeze", squeeze) if arch == "small"
            else default_only("class_squeeze", squeeze), by_name("scale", scale))


# PaddleClas's variants; one factory per registered name.
@register_model(namings=paddleclas_namings("large"), params=params_of("large", 0.35))
def MobileNetV3_large_x0_35(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("large", 0.35, class_num, **arguments)


@register_model(namings=paddleclas_namings("large"), params=params_of("large", 0.5))
def MobileNetV3_large_x0_5(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("large", 0.5, class_num, **arguments)


@register_model(namings=paddleclas_namings("large"), params=params_of("large", 0.75))
def MobileNetV3_large_x0_75(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("large", 0.75, class_num, **arguments)


@register_model(namings=paddleclas_namings("large"), params=params_of("large", 1.0))
def MobileNetV3_large_x1_0(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("large", 1.0, class_num, **arguments)


@register_model(namings=paddleclas_namings("large"), params=params_of("large", 1.25))
def MobileNetV3_large_x1_25(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("large", 1.25, class_num, **arguments)


@register_model(namings=paddleclas_namings("small"), params=params_of("small", 0.35))
def MobileNetV3_small_x0_35(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("small", 0.35, class_num, **arguments)


@register_model(namings=paddleclas_namings("small"), params=params_of("small", 0.5))
def MobileNetV3_small_x0_5(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("small", 0.5, class_num, **arguments)


@register_model(namings=paddleclas_namings("small"), params=params_of("small", 0.75))
def MobileNetV3_small_x0_75(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("small", 0.75, class_num, **arguments)


@register_model(namings=paddleclas_namings("small"), params=params_of("small", 1.0))
def MobileNetV3_small_x1_0(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("small", 1.0, class_num, **arguments)


@register_model(namings=paddleclas_namings("small"), params=params_of("small", 1.25))
def MobileNetV3_small_x1_25(class_num: int = 1000, **arguments) -> nn.Layer:
    return MobileNetV3("small", 1.25, class_num, **arguments)
