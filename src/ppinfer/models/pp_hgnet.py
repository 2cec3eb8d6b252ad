"""PP-HGNet tiny, small and base (the first PP-HGNet), with PaddleClas 2.x's structure, names
and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/legendary_models/pp_hgnet.py``
with the defaults its ``PPHGNet_*`` factories and ``ppcls/configs/ImageNet/PPHGNet/*.yaml`` use
(``use_last_conv``, ``class_expand`` 2048, dropout 0 for tiny and small, 0.2 for base). Sublayer
attributes are PaddleClas's and every variable is named after its state-dict key
(``models/keyed.py``), so a PaddleClas ``PPHGNet_small_pretrained.pdparams`` loads as it is:

* ``stem.{0,1,2}``: three 3x3 ConvBNAct (the first stride 2), then a 3x3 stride-2 max pool;
* ``stages.{0-3}``: an optional depthwise 3x3 s2 ``downsample`` (no activation), then
  ``blocks.{j}``: ``layers.{k}`` 3x3 ConvBNActs in a chain, all outputs concatenated with the
  input, ``aggregation_conv`` (1x1) to the stage's width, an effective squeeze-excite ``att``
  (pool, 1x1 conv with bias, sigmoid, multiply), plus the input in every block but the first;
* head: global pool, ``last_conv`` (1x1 to 2048, no bias, no batch norm), relu, dropout
  (``downscale_in_infer``: base multiplies by 0.8 at inference), ``fc``.

Its ConvBNAct (conv, batch norm epsilon 1e-5, relu) is PP-HGNetV2's without affine blocks.
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
from ppinfer.models.legacy_safe import sigmoid
from ppinfer.models.pp_hgnetv2 import ConvBNAct
from ppinfer.models.registry import register_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

CLASS_EXPAND = 2048


@dataclass(frozen=True)
class Stage:
    in_channels: int
    mid_channels: int
    out_channels: int
    blocks: int
    downsample: bool


@dataclass(frozen=True)
class Arch:
    stem: tuple[int, ...]  # output channels of each stem conv
    stages: tuple[Stage, ...]
    layers: int  # 3x3 convs per block
    dropout: float  # the factory's dropout_prob
    resize_short: int  # Infer.transforms of ppcls/configs/ImageNet/PPHGNet/PPHGNet_<size>.yaml


#   in, mid, out, blocks, downsample   (PaddleClas's stage_config)
ARCHS: dict[str, Arch] = {
    "tiny": Arch((48, 48, 96), (
        Stage(96, 96, 224, 1, False), Stage(224, 128, 448, 1, True),
        Stage(448, 160, 512, 2, True), Stage(512, 192, 768, 1, True)), 5, 0.0, 232),
    "small": Arch((64, 64, 128), (
        Stage(128, 128, 256, 1, False), Stage(256, 160, 512, 1, True),
        Stage(512, 192, 768, 2, True), Stage(768, 224, 1024, 1, True)), 6, 0.0, 236),
    "base": Arch((96, 96, 160), (
        Stage(160, 192, 320, 1, False), Stage(320, 224, 640, 2, True),
        Stage(640, 256, 960, 3, True), Stage(960, 288, 1280, 2, True)), 7, 0.2, 236),
}


def hgnet_preprocess(resize_short: int) -> PreprocessConfig:
    """PP-HGNet's Infer transforms: Pillow's bicubic resize of the short side, crop 224."""
    return PreprocessConfig(resize_short=resize_short, crop_size=(224, 224),
                            interpolation="bicubic", backend="pil")


class ESEModule(nn.Layer):
    """Channel gate: pool, 1x1 conv (same width, with bias), sigmoid, multiply."""

    def __init__(self, channels: int, key: str) -> None:
        super().__init__()
        self.conv = keyed.conv2d(channels, channels, 1, f"{key}.conv", bias=True)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * sigmoid(self.conv(F.adaptive_avg_pool2d(x, 1)))


class HGBlock(nn.Layer):
    """``layers`` 3x3 convs in a chain, aggregated with the input, gated; + input if
    ``identity``."""

    def __init__(self, in_channels: int, stage: Stage, layers: int, identity: bool,
                 key: str) -> None:
        super().__init__()
        self.identity = identity
        mid = stage.mid_channels
        self.layers = nn.LayerList([
            ConvBNAct(in_channels if k == 0 else mid, mid, 3, f"{key}.layers.{k}")
            for k in range(layers)
        ])
        self.aggregation_conv = ConvBNAct(in_channels + layers * mid, stage.out_channels, 1,
                                          f"{key}.aggregation_conv")
        self.att = ESEModule(stage.out_channels, f"{key}.att")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        outputs = [x]
        y = x
        for layer in self.layers:
            y = layer(y)
            outputs.append(y)
        y = self.att(self.aggregation_conv(paddle.concat(outputs, axis=1)))
        return y + x if self.identity else y


class HGStage(nn.Layer):
    def __init__(self, stage: Stage, layers: int, key: str) -> None:
        super().__init__()
        cin = stage.in_channels
        self.downsample = (
            ConvBNAct(cin, cin, 3, f"{key}.downsample", stride=2, groups=cin, act=False)
            if stage.downsample else None
        )
        self.blocks = nn.Sequential(*[
            HGBlock(cin if j == 0 else stage.out_channels, stage, layers, j > 0,
                    f"{key}.blocks.{j}")
            for j in range(stage.blocks)
        ])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.downsample is not None:
            x = self.downsample(x)
        return self.blocks(x)


class PPHGNet(nn.Layer):
    """PP-HGNet ``size`` ("tiny", "small", "base"); returns logits ``[N, class_num]``."""

    def __init__(self, size: str, class_num: int = 1000, *, use_last_conv: bool = True,
                 class_expand: int = CLASS_EXPAND, dropout_prob: float | None = 0.0) -> None:
        super().__init__()
        if size not in ARCHS:
            raise ValueError(f"size must be one of {', '.join(ARCHS)}, not {size!r}")
        cfg = ARCHS[size]
        with fresh_parameter_names():
            channels = (3, *cfg.stem)
            self.stem = nn.Sequential(*[
                ConvBNAct(channels[i], channels[i + 1], 3, f"stem.{i}", stride=2 if i == 0 else 1)
                for i in range(len(cfg.stem))
            ])
            self.stages = nn.LayerList([
                HGStage(stage, cfg.layers, f"stages.{i}") for i, stage in enumerate(cfg.stages)
            ])
            features = cfg.stages[-1].out_channels
            self.last_conv = (keyed.conv2d(features, class_expand, 1, "last_conv", padding=0)
                              if use_last_conv else None)
            # downscale_in_infer: inference multiplies by 1 - p, as PaddleClas's Dropout does
            self.dropout = (nn.Dropout(p=dropout_prob, mode="downscale_in_infer")
                            if use_last_conv and dropout_prob else None)
            self.fc = keyed.linear(class_expand if use_last_conv else features, class_num, "fc")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.max_pool2d(self.stem(x), kernel_size=3, stride=2, padding=1)
        for stage in self.stages:
            x = stage(x)
        x = F.adaptive_avg_pool2d(x, 1)
        if self.last_conv is not None:
            x = F.relu(self.last_conv(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.fc(paddle.flatten(x, start_axis=1))


def _register(size: str) -> None:
    cfg = ARCHS[size]
    # PaddleClas's PPHGNet constructor arguments a training config can set, with the factory's
    # defaults. PPHGNet_base's factory passes dropout_prob 0.2 itself (a config's value beside
    # it makes the factory fail: a keyword given twice), so only tiny and small take it.
    dropout = (by_name("dropout_prob", cfg.dropout) if size == "base"
               else Param("dropout_prob", cfg.dropout, check=probability, unseen=True))
    params = (Param("use_last_conv", True, check=boolean),
              Param("class_expand", CLASS_EXPAND, check=channels), dropout,
              by_name("stage_config", None), by_name("layer_num", None),
              by_name("stem_channels", None), *TRAINING, *FEATURE_OUTPUTS)

    def factory(class_num: int = 1000, **given) -> nn.Layer:
        return PPHGNet(size, class_num, **{"dropout_prob": cfg.dropout, **given})

    factory.__name__ = factory.__qualname__ = f"PPHGNet_{size}"
    factory.__doc__ = f"PP-HGNet-{size} (PaddleX: PP-HGNet_{size})."
    register_model(paddlex_name=f"PP-HGNet_{size}", preprocess=hgnet_preprocess(cfg.resize_short),
                   params=params)(factory)


for _size in ARCHS:
    _register(_size)
