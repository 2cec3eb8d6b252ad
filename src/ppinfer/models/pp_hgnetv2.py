"""PP-HGNetV2 B0 ... B6, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6
``ppcls/arch/backbone/legendary_models/pp_hgnet_v2.py``, learnable affine blocks (``use_lab``) in
B0-B3 only, with the constructor arguments that change the model built (:data:`PARAMS`):
``use_last_conv`` (true), ``class_expand`` (2048) and ``dropout_prob`` (0). Sublayer attributes are
PaddleClas's and every variable is named after its state-dict key (``models/keyed.py``), so a
PaddleClas ``PPHGNetV2_B4_ssld_pretrained.pdparams`` loads as it is:

* ``stem``: ``stem1`` (3x3 s2), then ``stem2a``/``stem2b`` (2x2, "SAME") beside a 2x2 max pool,
  concatenated, ``stem3`` (3x3 s2), ``stem4`` (1x1);
* ``stages.{0-3}``: an optional depthwise 3x3 s2 ``downsample`` (no activation), then
  ``blocks.{j}``, each ``layers.{k}`` (a ConvBNAct, or in "light" stages a 1x1 ``conv1`` and a
  depthwise ``conv2``) whose outputs are all concatenated with the input, squeezed to half the
  output width and excited to it (``aggregation_squeeze_conv``, ``aggregation_excitation_conv``),
  plus the input in every block but a stage's first;
* head: global pool, ``last_conv`` (1x1 to 2048, no bias, no batch norm), relu, ``lab`` when
  ``use_lab``, dropout (``downscale_in_infer``: times ``1 - dropout_prob``), ``fc``; without
  ``use_last_conv`` only ``fc``.

A learnable affine block (``*.lab.scale``, ``*.lab.bias``, one value each) follows the relu of
every activated conv when ``use_lab``; convs without activation have none.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    probability,
)
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.registry import register_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

CLASS_EXPAND = 2048

# PaddleClas's PPHGNetV2(...) keywords; the factories set the stages, stem and use_lab.
PARAMS: tuple[Param, ...] = (
    Param("use_last_conv", True, check=boolean),
    Param("class_expand", CLASS_EXPAND, check=channels),
    Param("dropout_prob", 0.0, check=probability, unseen=True),
    by_name("stage_config", None),
    by_name("stem_channels", None),
    by_name("use_lab", None),
    *TRAINING,
    *FEATURE_OUTPUTS,
)

# ppcls/configs/ImageNet/PPHGNetV2/PPHGNetV2_B{0-6}.yaml, Infer.transforms (all seven alike).
HGNETV2_PREPROCESS = PreprocessConfig(
    resize_short=232, crop_size=(224, 224), interpolation="bicubic", backend="pil"
)


@dataclass(frozen=True)
class Stage:
    in_channels: int
    mid_channels: int
    out_channels: int
    blocks: int
    downsample: bool
    light: bool
    kernel: int
    layers: int


@dataclass(frozen=True)
class Arch:
    stem: tuple[int, int]  # (mid, out) channels
    stages: tuple[Stage, ...]
    use_lab: bool


def _stages(*rows: tuple) -> tuple[Stage, ...]:
    return tuple(Stage(*row) for row in rows)


#   in, mid, out, blocks, downsample, light, kernel, layers   (PaddleClas's stage_config)
ARCHS: dict[str, Arch] = {
    "B0": Arch((16, 16), _stages(
        (16, 16, 64, 1, False, False, 3, 3), (64, 32, 256, 1, True, False, 3, 3),
        (256, 64, 512, 2, True, True, 5, 3), (512, 128, 1024, 1, True, True, 5, 3)), True),
    "B1": Arch((24, 32), _stages(
        (32, 32, 64, 1, False, False, 3, 3), (64, 48, 256, 1, True, False, 3, 3),
        (256, 96, 512, 2, True, True, 5, 3), (512, 192, 1024, 1, True, True, 5, 3)), True),
    "B2": Arch((24, 32), _stages(
        (32, 32, 96, 1, False, False, 3, 4), (96, 64, 384, 1, True, False, 3, 4),
        (384, 128, 768, 3, True, True, 5, 4), (768, 256, 1536, 1, True, True, 5, 4)), True),
    "B3": Arch((24, 32), _stages(
        (32, 32, 128, 1, False, False, 3, 5), (128, 64, 512, 1, True, False, 3, 5),
        (512, 128, 1024, 3, True, True, 5, 5), (1024, 256, 2048, 1, True, True, 5, 5)), True),
    "B4": Arch((32, 48), _stages(
        (48, 48, 128, 1, False, False, 3, 6), (128, 96, 512, 1, True, False, 3, 6),
        (512, 192, 1024, 3, True, True, 5, 6), (1024, 384, 2048, 1, True, True, 5, 6)), False),
    "B5": Arch((32, 64), _stages(
        (64, 64, 128, 1, False, False, 3, 6), (128, 128, 512, 2, True, False, 3, 6),
        (512, 256, 1024, 5, True, True, 5, 6), (1024, 512, 2048, 2, True, True, 5, 6)), False),
    "B6": Arch((48, 96), _stages(
        (96, 96, 192, 2, False, False, 3, 6), (192, 192, 512, 3, True, False, 3, 6),
        (512, 384, 1024, 6, True, True, 5, 6), (1024, 768, 2048, 3, True, True, 5, 6)), False),
}


class LearnableAffineBlock(nn.Layer):
    """``scale * x + bias`` with one learned scale and bias (initially 1 and 0)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.scale = keyed.scalar_parameter(self, "scale", key, 1.0)
        self.bias = keyed.scalar_parameter(self, "bias", key, 0.0)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.scale * x + self.bias


class ConvBNAct(nn.Layer):
    """Conv (no bias) + batch norm, then relu (+ affine block with ``use_lab``) if ``act``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, key: str, stride: int = 1,
        groups: int = 1, padding: str | None = None, act: bool = True, use_lab: bool = False,
    ) -> None:
        super().__init__()
        self.conv = keyed.conv2d(in_channels, out_channels, kernel, f"{key}.conv",
                                 stride=stride, groups=groups, padding=padding)
        self.bn = keyed.batch_norm(out_channels, f"{key}.bn")
        self._act = act
        self.lab = LearnableAffineBlock(f"{key}.lab") if act and use_lab else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.bn(self.conv(x))
        if self._act:
            x = F.relu(x)
            if self.lab is not None:
                x = self.lab(x)
        return x


class LightConvBNAct(nn.Layer):
    """A 1x1 conv without activation, then a depthwise ``kernel`` conv with it."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, key: str,
                 use_lab: bool) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, out_channels, 1, f"{key}.conv1", act=False,
                               use_lab=use_lab)
        self.conv2 = ConvBNAct(out_channels, out_channels, kernel, f"{key}.conv2",
                               groups=out_channels, use_lab=use_lab)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.conv2(self.conv1(x))


class StemBlock(nn.Layer):
    def __init__(self, mid: int, out: int, use_lab: bool) -> None:
        super().__init__()
        self.stem1 = ConvBNAct(3, mid, 3, "stem.stem1", stride=2, use_lab=use_lab)
        self.stem2a = ConvBNAct(mid, mid // 2, 2, "stem.stem2a", padding="SAME", use_lab=use_lab)
        self.stem2b = ConvBNAct(mid // 2, mid, 2, "stem.stem2b", padding="SAME", use_lab=use_lab)
        self.stem3 = ConvBNAct(mid * 2, mid, 3, "stem.stem3", stride=2, use_lab=use_lab)
        self.stem4 = ConvBNAct(mid, out, 1, "stem.stem4", use_lab=use_lab)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.stem1(x)
        branch = self.stem2b(self.stem2a(x))
        pooled = F.max_pool2d(x, kernel_size=2, stride=1, padding="SAME", ceil_mode=True)
        return self.stem4(self.stem3(paddle.concat([pooled, branch], axis=1)))


class HGV2Block(nn.Layer):
    """``layers`` convs in a chain, all outputs (and the input) aggregated; + input if
    ``identity``."""

    def __init__(self, in_channels: int, stage: Stage, identity: bool, key: str,
                 use_lab: bool) -> None:
        super().__init__()
        self.identity = identity
        mid = stage.mid_channels
        layers = []
        for k in range(stage.layers):
            cin = in_channels if k == 0 else mid
            if stage.light:
                layer = LightConvBNAct(cin, mid, stage.kernel, f"{key}.layers.{k}", use_lab)
            else:
                layer = ConvBNAct(cin, mid, stage.kernel, f"{key}.layers.{k}", use_lab=use_lab)
            layers.append(layer)
        self.layers = nn.LayerList(layers)
        total = in_channels + stage.layers * mid
        out = stage.out_channels
        self.aggregation_squeeze_conv = ConvBNAct(
            total, out // 2, 1, f"{key}.aggregation_squeeze_conv", use_lab=use_lab)
        self.aggregation_excitation_conv = ConvBNAct(
            out // 2, out, 1, f"{key}.aggregation_excitation_conv", use_lab=use_lab)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        outputs = [x]
        y = x
        for layer in self.layers:
            y = layer(y)
            outputs.append(y)
        y = self.aggregation_squeeze_conv(paddle.concat(outputs, axis=1))
        y = self.aggregation_excitation_conv(y)
        return y + x if self.identity else y


class HGV2Stage(nn.Layer):
    def __init__(self, stage: Stage, key: str, use_lab: bool) -> None:
        super().__init__()
        cin = stage.in_channels
        self.downsample = (
            ConvBNAct(cin, cin, 3, f"{key}.downsample", stride=2, groups=cin, act=False,
                      use_lab=use_lab)
            if stage.downsample else None
        )
        self.blocks = nn.Sequential(*[
            HGV2Block(cin if j == 0 else stage.out_channels, stage, j > 0,
                      f"{key}.blocks.{j}", use_lab)
            for j in range(stage.blocks)
        ])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNetV2(nn.Layer):
    """PP-HGNetV2 ``arch`` ("B0" ... "B6"); returns logits ``[N, class_num]``. The keywords
    are PaddleClas's (:data:`PARAMS`)."""

    def __init__(self, arch: str, class_num: int = 1000, *, use_last_conv: bool = True,
                 class_expand: int = CLASS_EXPAND, dropout_prob: float = 0.0) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
        cfg = ARCHS[arch]
        with fresh_parameter_names():
            self.stem = StemBlock(*cfg.stem, use_lab=cfg.use_lab)
            self.stages = nn.LayerList([
                HGV2Stage(stage, f"stages.{i}", cfg.use_lab) for i, stage in enumerate(cfg.stages)
            ])
            features = cfg.stages[-1].out_channels
            self.last_conv = self.lab = self.dropout = None
            if use_last_conv:
                self.last_conv = keyed.conv2d(features, class_expand, 1, "last_conv", padding=0)
                self.lab = LearnableAffineBlock("lab") if cfg.use_lab else None
                self.dropout = nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
                features = class_expand
            self.fc = keyed.linear(features, class_num, "fc")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        x = F.adaptive_avg_pool2d(x, 1)
        if self.last_conv is not None:
            x = F.relu(self.last_conv(x))
            if self.lab is not None:
                x = self.lab(x)
            x = self.dropout(x)
        return self.fc(paddle.flatten(x, start_axis=1))


def _register(arch: str) -> None:
    def factory(class_num: int = 1000, **arguments) -> nn.Layer:
        return PPHGNetV2(arch, class_num, **arguments)

    factory.__name__ = factory.__qualname__ = f"PPHGNetV2_{arch}"
    factory.__doc__ = f"PP-HGNetV2-{arch} (PaddleX: PP-HGNetV2-{arch})."
    register_model(paddlex_name=f"PP-HGNetV2-{arch}", preprocess=HGNETV2_PREPROCESS,
                   params=PARAMS)(factory)


for _arch in ARCHS:
    _register(_arch)
