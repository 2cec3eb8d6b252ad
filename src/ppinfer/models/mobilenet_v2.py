"""MobileNetV2 x0.25 ... x2.0, with PaddleClas's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/model_zoo/mobilenet_v2.py``
(the 1.x model ported to dygraph). That model fixes its variable names with ``ParamAttr``
(``conv1_1_weights``, ``conv3_2_dwise_bn_mean``, ``fc10_offset``) and its sublayers keep 1.x's
layout, so ppinfer builds both the same way and every file PaddleClas wrote loads: a 1.x
persistable directory by variable name; a 2.x ``paddle.save(state_dict())``
(``conv3.conv3_2._expand_conv._conv.weight``, ``out.weight``) by its structured names, which
are ppinfer's own, or by its ``StructuredToParameterName@@`` table.

* ``conv1``: 3x3 stride-2 conv (``conv1_1``), batch norm, ReLU6;
* ``conv2`` ... ``conv8``: inverted-residual stages ``(t, c, n, s)`` = (1, 16, 1, 1),
  (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1);
  each unit a 1x1 ``_expand_conv`` (x t) + ReLU6, a 3x3 depthwise ``_bottleneck_conv`` (stride
  here) + ReLU6, and a 1x1 ``_linear_conv`` without activation; every unit but a stage's first
  (``_first_block``; the others are ``conv{i}_{k}``) adds its input;
* ``conv9``: 1x1 to 1280 (``int(1280 * scale)`` above x1.0) + ReLU6, global pool, ``out``
  (``fc10_weights``, ``fc10_offset``). No dropout.

Batch norm epsilon 1e-5. Widths are ``int(c * scale)``, without rounding to a multiple of 8.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import ParamAttr, nn

from ppinfer.models.arguments import TRAINING, Param, by_name, no_effect
from ppinfer.models.layers import fresh_parameter_names, named_batch_norm
from ppinfer.models.registry import register_model

# (expansion t, channels c, units n, first stride s) per stage, conv2 ... conv8.
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
# PaddleClas name -> width scale; PaddleX lists these five and calls MobileNetV2 x1_0.
SCALES = {"MobileNetV2_x0_25": 0.25, "MobileNetV2_x0_5": 0.5, "MobileNetV2": 1.0,
          "MobileNetV2_x1_5": 1.5, "MobileNetV2_x2_0": 2.0}
# PaddleClas's MobileNet (v2) constructor arguments: ``prefix_name`` prefixes every variable
# name (the structured keys stay); ``data_format`` "NHWC" only transposes inside, the same network.
def _prefix(value) -> str:
    if not isinstance(value, str):
        raise ValueError("a text prefix")
    return value


PARAMS: tuple[Param, ...] = (
    Param("prefix_name", "", check=_prefix),
    no_effect("data_format", "NCHW"),
    by_name("scale", None),
    *TRAINING,
)


class ConvBNLayer(nn.Layer):
    """Conv ``{name}_weights`` (no bias) + batch norm ``{name}_bn_*``; ReLU6 when ``act``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int,
                 padding: int, name: str, groups: int = 1) -> None:
        super().__init__()
        self._conv = nn.Conv2D(in_channels, out_channels, kernel, stride=stride,
                               padding=padding, groups=groups,
                               weight_attr=ParamAttr(name=f"{name}_weights"), bias_attr=False)
        self._batch_norm = named_batch_norm(out_channels, f"{name}_bn")

    def forward(self, x: paddle.Tensor, act: bool = True) -> paddle.Tensor:
        x = self._batch_norm(self._conv(x))
        return F.relu6(x) if act else x


class InvertedResidualUnit(nn.Layer):
    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int,
                 name: str) -> None:
        super().__init__()
        expanded = int(round(in_channels * expansion))
        self._expand_conv = ConvBNLayer(in_channels, expanded, 1, 1, 0, f"{name}_expand")
        self._bottleneck_conv = ConvBNLayer(expanded, expanded, 3, stride, 1, f"{name}_dwise",
                                            groups=expanded)
        self._linear_conv = ConvBNLayer(expanded, out_channels, 1, 1, 0, f"{name}_linear")

    def forward(self, x: paddle.Tensor, shortcut: bool) -> paddle.Tensor:
        y = self._linear_conv(self._bottleneck_conv(self._expand_conv(x)), act=False)
        return x + y if shortcut else y


class InvertedResidualStage(nn.Layer):
    """``_first_block`` (stride ``stride``, no shortcut), then ``{name}_2`` ... with one."""

    def __init__(self, in_channels: int, expansion: int, channels: int, units: int,
                 stride: int, name: str) -> None:
        super().__init__()
        self._first_block = InvertedResidualUnit(in_channels, channels, stride, expansion,
                                                 f"{name}_1")
        self._others = [
            self.add_sublayer(f"{name}_{k}", InvertedResidualUnit(channels, channels, 1,
                                                                  expansion, f"{name}_{k}"))
            for k in range(2, units + 1)
        ]

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self._first_block(x, shortcut=False)
        for unit in self._others:
            x = unit(x, shortcut=True)
        return x


class MobileNetV2(nn.Layer):
    """MobileNetV2 at width ``scale``; returns logits ``[N, class_num]``."""

    def __init__(self, scale: float, class_num: int = 1000, *, prefix_name: str = "",
                 data_format: str = "NCHW") -> None:
        super().__init__()
        if data_format not in ("NCHW", "NHWC"):
            raise ValueError(f"data_format {data_format!r}: PaddleClas takes NCHW or NHWC")
        with fresh_parameter_names():
            channels = int(32 * scale)
            self.conv1 = ConvBNLayer(3, channels, 3, 2, 1, f"{prefix_name}conv1_1")
            self._stages = []
            for number, (t, c, n, s) in enumerate(STAGES, start=2):
                name = f"{prefix_name}conv{number}"
                stage = InvertedResidualStage(channels, t, int(c * scale), n, s, name)
                self._stages.append(self.add_sublayer(name, stage))
                channels = int(c * scale)
            out_channels = int(1280 * scale) if scale > 1.0 else 1280
            self.conv9 = ConvBNLayer(channels, out_channels, 1, 1, 0, f"{prefix_name}conv9")
            self.out = nn.Linear(out_channels, class_num,
                                 weight_attr=ParamAttr(name=f"{prefix_name}fc10_weights"),
                                 bias_attr=ParamAttr(name=f"{prefix_name}fc10_offset"))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        for stage in self._stages:
            x = stage(x)
        x = F.adaptive_avg_pool2d(self.conv9(x), 1)
        return self.out(paddle.flatten(x, start_axis=1))


def _register(name: str, scale: float) -> None:
    def factory(class_num: int = 1000, **arguments) -> nn.Layer:
        return MobileNetV2(scale, class_num, **arguments)

    suffix = name.rpartition("_x")[2] if "_x" in name else "1_0"
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"MobileNetV2 at width {scale} (PaddleX: MobileNetV2_x{suffix})."
    register_model(paddlex_name=f"MobileNetV2_x{suffix}", params=PARAMS)(factory)


for _name, _scale in SCALES.items():
    _register(_name, _scale)
