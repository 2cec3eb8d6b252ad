"""ResNet and ResNet_vd, named as in PaddleClas 1.x ppcls/modeling/architectures/resnet*.py.

The variables keep PaddleClas 1.x's ``ParamAttr`` names (``conv1_1_weights``,
``res2a_branch2a_weights``, ``bn2a_branch2a_scale``, ``fc_0.w_0``, ...). The tables at the end
read the structured names of PaddleClas's later dygraph models into this module's own ones.

Of PaddleClas 2.x's ``ResNet(...)`` keywords (:data:`PARAMS`), those that change the model are
built at their defaults only (``stem_act: relu``, ``stride_list: [2, 2, 2, 2, 2]``,
``max_pool: true``, ...): a config that sets another value is refused by name.
"""

from __future__ import annotations

import math

import paddle
from paddle import ParamAttr, nn

from ppinfer.checkpoints.keymap import KeyTable, table_naming
from ppinfer.checkpoints.namings import Naming
from ppinfer.models.arguments import (
    FEATURE_OUTPUTS,
    TRAINING,
    Param,
    by_name,
    default_only,
    no_effect,
)
from ppinfer.models.layers import fresh_parameter_names, named_batch_norm
from ppinfer.models.registry import register_model

# Residual blocks per stage (res2 .. res5).
_STAGE_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
_STAGE_WIDTHS = (64, 128, 256, 512)
_BOTTLENECK_EXPANSION = 4

# PaddleClas 2.x's ResNet(...) keywords (legendary_models/resnet.py). data_format: "NHWC"
# transposes the NCHW input first; the math, and the exported program's input, are the same.
PARAMS: tuple[Param, ...] = (
    default_only("stem_act", "relu", unseen=True),
    default_only("stride_list", [2, 2, 2, 2, 2], unseen=True),
    default_only("max_pool", True, unseen=True),
    default_only("input_image_channel", 3),
    default_only("layer_type", "ConvBNLayer"),
    default_only("use_first_short_conv", True),
    no_effect("data_format", "NCHW"),
    by_name("config", None),
    by_name("stages_pattern", None),
    by_name("version", None),
    *TRAINING,
    *FEATURE_OUTPUTS,
)


def _bn_name(conv_name: str) -> str:
    """PaddleClas's rule: "conv1" -> "bn_conv1", else "bn" + name[3:].

    So "res2a_branch2a" -> "bn2a_branch2a", and the vd stem's "conv1_1" -> "bnv1_1" (sic).
    """
    return "bn_conv1" if conv_name == "conv1" else "bn" + conv_name[3:]


def _block_name(depth: int, stage: int, index: int) -> str:
    """PaddleClas block names: res2a, res3b, ...; ResNet101/152 count res4 as res4a, res4b1, ..."""
    if depth in (101, 152) and stage == 2 and index > 0:
        return f"res4b{index}"
    return f"res{stage + 2}{chr(ord('a') + index)}"


class ConvBN(nn.Layer):
    """Bias-free conv + batch norm (+ activation), optionally after the vd 2x2 average pool."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        name: str,
        stride: int = 1,
        act: str | None = None,
        avg_pool_first: bool = False,
    ) -> None:
        super().__init__()
        self.pool = nn.AvgPool2D(2, 2, ceil_mode=True) if avg_pool_first else None
        self.conv = nn.Conv2D(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            weight_attr=ParamAttr(name=f"{name}_weights"),
            bias_attr=False,
        )
        bn = _bn_name(name)
        self.bn = named_batch_norm(out_channels, bn)
        self.act = nn.ReLU() if act == "relu" else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class ResidualBlock(nn.Layer):
    """Basic (3x3, 3x3) or bottleneck (1x1, 3x3, 1x1 x4) block; the stride sits on the first 3x3.

    ``project`` adds the 1x1 ``{name}_branch1`` shortcut (first block of every stage). With
    ``vd_shortcut`` it is AvgPool(2, 2, ceil) then a stride-1 conv instead of a strided conv.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        stride: int,
        name: str,
        bottleneck: bool,
        project: bool,
        vd_shortcut: bool,
    ) -> None:
        super().__init__()
        if bottleneck:
            out_channels = width * _BOTTLENECK_EXPANSION
            # (suffix, in, out, kernel, stride, act)
            convs = [
                ("branch2a", in_channels, width, 1, 1, "relu"),
                ("branch2b", width, width, 3, stride, "relu"),
                ("branch2c", width, out_channels, 1, 1, None),
            ]
        else:
            out_channels = width
            convs = [
                ("branch2a", in_channels, width, 3, stride, "relu"),
                ("branch2b", width, width, 3, 1, None),
            ]
        self.branch2 = nn.Sequential(
            *[
                (suffix, ConvBN(cin, cout, k, f"{name}_{suffix}", stride=s, act=act))
                for suffix, cin, cout, k, s, act in convs
            ]
        )
        self.branch1 = None
        if project:
            self.branch1 = ConvBN(
                in_channels,
                out_channels,
                1,
                f"{name}_branch1",
                stride=1 if vd_shortcut else stride,
                avg_pool_first=vd_shortcut,
            )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        shortcut = x if self.branch1 is None else self.branch1(x)
        return nn.functional.relu(shortcut + self.branch2(x))


class ResNet(nn.Layer):
    """ResNet-{18,34,50,101,152}; ``vd`` swaps in the 3-conv stem and avg-pool shortcuts.

    Returns logits ``[N, class_num]`` (no softmax: the exporter appends it).
    """

    def __init__(self, depth: int, vd: bool = False, class_num: int = 1000) -> None:
        super().__init__()
        if depth not in _STAGE_DEPTHS:
            raise ValueError(f"ResNet depth must be one of {sorted(_STAGE_DEPTHS)}, got {depth}.")
        with fresh_parameter_names():
            self.stem = self._make_stem(vd)
            self.blocks, features = self._make_stages(depth, vd)
            self.pool = nn.AdaptiveAvgPool2D(1)
            stdv = 1.0 / math.sqrt(features)
            self.fc = nn.Linear(
                features,
                class_num,
                weight_attr=ParamAttr(
                    name="fc_0.w_0", initializer=nn.initializer.Uniform(-stdv, stdv)
                ),
                bias_attr=ParamAttr(name="fc_0.b_0"),
            )

    @staticmethod
    def _make_stem(vd: bool) -> nn.Sequential:
        # (name, in, out, kernel, stride)
        if vd:
            convs = [
                ("conv1_1", 3, 32, 3, 2),
                ("conv1_2", 32, 32, 3, 1),
                ("conv1_3", 32, 64, 3, 1),
            ]
        else:
            convs = [("conv1", 3, 64, 7, 2)]
        layers = [
            (name, ConvBN(cin, cout, k, name, stride=s, act="relu"))
            for name, cin, cout, k, s in convs
        ]
        return nn.Sequential(*layers, ("pool", nn.MaxPool2D(3, stride=2, padding=1)))

    @staticmethod
    def _make_stages(depth: int, vd: bool) -> tuple[nn.Sequential, int]:
        bottleneck = depth >= 50
        expansion = _BOTTLENECK_EXPANSION if bottleneck else 1
        in_channels = 64
        blocks = []
        for stage, (count, width) in enumerate(zip(_STAGE_DEPTHS[depth], _STAGE_WIDTHS)):
            for index in range(count):
                name = _block_name(depth, stage, index)
                first = index == 0
                block = ResidualBlock(
                    in_channels,
                    width,
                    stride=2 if first and stage > 0 else 1,
                    name=name,
                    bottleneck=bottleneck,
                    project=first,
                    # res2a has nothing to pool away (stride 1): a plain 1x1 conv even in vd.
                    vd_shortcut=vd and stage > 0,
                )
                blocks.append((name, block))
                in_channels = width * expansion
        return nn.Sequential(*blocks), in_channels

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(paddle.flatten(self.pool(x), start_axis=1))


# How PaddleClas's later dygraph ResNets name their keys (see checkpoints/keymap.py). The 2.x/3.x
# "legendary" model (ppcls/arch/backbone/legendary_models/resnet.py) numbers its stem convs and
# blocks: stem.0.conv.weight, blocks.3.conv1.bn._mean, blocks.2.short.conv.weight, fc.weight.
PADDLECLAS_LEGENDARY: KeyTable = (
    ("stem.{stem}.{tail}", "stem.{stem}.{tail}"),
    ("blocks.{block}.conv{branch2}.{tail}", "blocks.{block}.branch2.{branch2}.{tail}"),
    ("blocks.{block}.short.{tail}", "blocks.{block}.branch1.{tail}"),
    ("fc.{tail}", "fc.{tail}"),
)
# PaddleClas 2.0's model_zoo/resnet.py and resnet_vd.py: conv._conv.weight (plain stem),
# conv1_1._batch_norm._mean (vd stem), res3a.conv0._conv.weight (plain) or bb_1_0.short._conv.weight
# (vd blocks), out.weight. Their files usually carry a StructuredToParameterName@@ table too.
PADDLECLAS_2_0: KeyTable = (
    ("conv.{unit}.{param}", "stem.conv1.{unit}.{param}"),
    ("{stem}.{unit}.{param}", "stem.{stem}.{unit}.{param}"),
    ("{block}.conv{branch2}.{unit}.{param}", "blocks.{block}.branch2.{branch2}.{unit}.{param}"),
    ("{block}.short.{unit}.{param}", "blocks.{block}.branch1.{unit}.{param}"),
    ("out.{param}", "fc.{param}"),
)
_BRANCH2 = ("branch2a", "branch2b", "branch2c")
_UNITS_2_0 = {"_conv": "conv", "_batch_norm": "bn"}


def paddleclas_namings(depth: int, vd: bool = False) -> tuple[Naming, ...]:
    """The PaddleClas 2.x/3.x and 2.0 namings of ResNet{depth}(_vd), bound to its blocks."""
    stem = ("conv1_1", "conv1_2", "conv1_3") if vd else ("conv1",)
    stages = [(stage, index) for stage, count in enumerate(_STAGE_DEPTHS[depth])
              for index in range(count)]
    blocks = tuple(_block_name(depth, stage, index) for stage, index in stages)
    # 2.0's vd model adds its blocks as bb_{stage}_{index}, the plain one under their 1.x names.
    keys_2_0 = [f"bb_{stage}_{index}" for stage, index in stages] if vd else blocks
    return (
        table_naming("PaddleClas 2.x/3.x structured names", PADDLECLAS_LEGENDARY,
                     stem=stem, block=blocks, branch2=_BRANCH2),
        table_naming("PaddleClas 2.0 structured names", PADDLECLAS_2_0,
                     stem={name: name for name in stem if vd}, block=dict(zip(keys_2_0, blocks)),
                     branch2=_BRANCH2, unit=_UNITS_2_0),
    )


@register_model(namings=paddleclas_namings(18), params=PARAMS)
def ResNet18(class_num: int = 1000) -> nn.Layer:
    return ResNet(18, class_num=class_num)


@register_model(namings=paddleclas_namings(34), params=PARAMS)
def ResNet34(class_num: int = 1000) -> nn.Layer:
    return ResNet(34, class_num=class_num)


@register_model(namings=paddleclas_namings(50), params=PARAMS)
def ResNet50(class_num: int = 1000) -> nn.Layer:
    return ResNet(50, class_num=class_num)


@register_model(namings=paddleclas_namings(101), params=PARAMS)
def ResNet101(class_num: int = 1000) -> nn.Layer:
    return ResNet(101, class_num=class_num)


@register_model(namings=paddleclas_namings(152), params=PARAMS)
def ResNet152(class_num: int = 1000) -> nn.Layer:
    return ResNet(152, class_num=class_num)


@register_model(namings=paddleclas_namings(18, vd=True), params=PARAMS)
def ResNet18_vd(class_num: int = 1000) -> nn.Layer:
    return ResNet(18, vd=True, class_num=class_num)


@register_model(namings=paddleclas_namings(34, vd=True), params=PARAMS)
def ResNet34_vd(class_num: int = 1000) -> nn.Layer:
    return ResNet(34, vd=True, class_num=class_num)


@register_model(namings=paddleclas_namings(50, vd=True), params=PARAMS)
def ResNet50_vd(class_num: int = 1000) -> nn.Layer:
    return ResNet(50, vd=True, class_num=class_num)


@register_model(namings=paddleclas_namings(101, vd=True), params=PARAMS)
def ResNet101_vd(class_num: int = 1000) -> nn.Layer:
    return ResNet(101, vd=True, class_num=class_num)


@register_model(namings=paddleclas_namings(152, vd=True), params=PARAMS)
def ResNet152_vd(class_num: int = 1000) -> nn.Layer:
    return ResNet(152, vd=True, class_num=class_num)
