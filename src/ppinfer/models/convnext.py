"""ConvNeXt tiny ... large, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/model_zoo/convnext.py``
(after facebookresearch/ConvNeXt) with its factories' defaults. Sublayer attributes are
PaddleClas's and every variable is named after its state-dict key (``models/keyed.py``), so a
PaddleClas ``ConvNeXt_tiny_pretrained.pdparams`` loads as it is:

* ``downsample_layers.0``: a 4x4 stride-4 conv (``.0``, with bias) then a channels-first layer
  norm (``.1``); ``downsample_layers.{1-3}``: layer norm (``.0``) then a 2x2 stride-2 conv (``.1``);
* ``stages.{i}.{j}``: a block: depthwise 7x7 ``dwconv``, then channels-last ``norm``,
  ``pwconv1`` (linear to 4x width), exact GELU, ``pwconv2``, scaled per channel by ``gamma``
  (when ``layer_scale_init_value`` > 0), plus the input;
* head: global average pool, ``norm`` (layer norm), ``head`` (linear).

Layer norms use epsilon 1e-6. Stochastic depth (``drop_path_rate``) is the identity at inference
and ``head_init_scale`` only scales the initial classifier: both are accepted, neither changes
the exported network.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.arguments import TRAINING, Param, by_name, default_only, no_effect
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.legacy_safe import gelu
from ppinfer.models.registry import register_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

EPSILON = 1e-6
STAGES = 4

# PaddleClas name -> (blocks per stage, width per stage).
SIZES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base_224": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "base_384": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large_224": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "large_384": ((3, 3, 27, 3), (192, 384, 768, 1536)),
}

# ppcls/configs/ImageNet/ConvNeXt/ConvNeXt_*.yaml, Infer.transforms: Pillow's bicubic; the
# *_384 models resize the short side to 384 and crop 384, the others 256 and 224.
PREPROCESS_224 = PreprocessConfig(resize_short=256, crop_size=(224, 224),
                                  interpolation="bicubic", backend="pil")
PREPROCESS_384 = PreprocessConfig(resize_short=384, crop_size=(384, 384),
                                  interpolation="bicubic", backend="pil")

# PaddleClas's ConvNeXt constructor arguments (a training config's ``Arch``): a layer scale
# of 0 builds no ``gamma``; stochastic depth and the initial head scale change no export.
PARAMS: tuple[Param, ...] = (
    default_only("in_chans", 3), Param("layer_scale_init_value", 1e-6),
    no_effect("drop_path_rate", 0.0), no_effect("head_init_scale", 1.0), *TRAINING)


def _params(size: str) -> tuple[Param, ...]:
    depths, dims = SIZES[size]
    return (*PARAMS, by_name("depths", list(depths)), by_name("dims", list(dims)))


class ChannelsFirstLayerNorm(nn.Layer):
    """Layer norm over the channel axis of ``[N, C, H, W]`` (PaddleClas writes out the math:
    biased variance, ``(x - mean) / sqrt(var + eps)``; Paddle's layer norm on the channels-last
    view is the same, and builds in either static IR)."""

    def __init__(self, channels: int, key: str) -> None:
        super().__init__()
        self.weight = keyed.parameter(self, "weight", key, [channels], 1.0)
        self.bias = keyed.parameter(self, "bias", key, [channels], 0.0)
        self._channels = channels

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.layer_norm(x.transpose([0, 2, 3, 1]), [self._channels], self.weight, self.bias,
                         EPSILON)
        return x.transpose([0, 3, 1, 2])


class Block(nn.Layer):
    """Depthwise 7x7, layer norm, 4x MLP with GELU, layer scale, residual."""

    def __init__(self, dim: int, key: str, layer_scale: float) -> None:
        super().__init__()
        self.dwconv = keyed.conv2d(dim, dim, 7, f"{key}.dwconv", groups=dim, bias=True)
        self.norm = keyed.layer_norm(dim, f"{key}.norm", epsilon=EPSILON)
        self.pwconv1 = keyed.linear(dim, 4 * dim, f"{key}.pwconv1")
        self.pwconv2 = keyed.linear(4 * dim, dim, f"{key}.pwconv2")
        self.gamma = (keyed.parameter(self, "gamma", key, [dim], layer_scale)
                      if layer_scale > 0 else None)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.dwconv(x).transpose([0, 2, 3, 1])  # NCHW -> NHWC
        y = self.pwconv2(gelu(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.transpose([0, 3, 1, 2])


class ConvNeXt(nn.Layer):
    """ConvNeXt with ``depths`` blocks of ``dims`` widths; returns logits ``[N, class_num]``."""

    def __init__(self, depths: tuple[int, ...], dims: tuple[int, ...], class_num: int = 1000,
                 *, in_chans: int = 3, layer_scale_init_value: float = 1e-6) -> None:
        super().__init__()
        with fresh_parameter_names():
            stem = nn.Sequential(
                keyed.conv2d(in_chans, dims[0], 4, "downsample_layers.0.0", stride=4,
                             padding=0, bias=True),
                ChannelsFirstLayerNorm(dims[0], "downsample_layers.0.1"))
            self.downsample_layers = nn.LayerList([stem] + [
                nn.Sequential(
                    ChannelsFirstLayerNorm(dims[i - 1], f"downsample_layers.{i}.0"),
                    keyed.conv2d(dims[i - 1], dims[i], 2, f"downsample_layers.{i}.1", stride=2,
                                 padding=0, bias=True))
                for i in range(1, STAGES)
            ])
            self.stages = nn.LayerList([
                nn.Sequential(*[Block(dims[i], f"stages.{i}.{j}", layer_scale_init_value)
                                for j in range(depths[i])])
                for i in range(STAGES)
            ])
            self.norm = keyed.layer_norm(dims[-1], "norm", epsilon=EPSILON)
            self.head = keyed.linear(dims[-1], class_num, "head")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return self.head(self.norm(x.mean(axis=[-2, -1])))


def _register(size: str) -> None:
    depths, dims = SIZES[size]

    def factory(class_num: int = 1000, **built) -> nn.Layer:
        return ConvNeXt(depths, dims, class_num, **built)

    name = f"ConvNeXt_{size}"
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"ConvNeXt-{size} (PaddleX: {name})."
    side = 384 if size.endswith("_384") else 224
    register_model(input_shape=(3, side, side),
                   preprocess=PREPROCESS_384 if side == 384 else PREPROCESS_224,
                   params=_params(size))(factory)


for _size in SIZES:
    _register(_size)
