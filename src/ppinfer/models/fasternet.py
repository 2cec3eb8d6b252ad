"""FasterNet T0 ... L, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/model_zoo/fasternet.py``
(its ``NET_CONFIG``). Sublayer attributes are PaddleClas's and every variable is named after its
state-dict key (``models/keyed.py``), so a PaddleClas ``FasterNet_T0_pretrained.pdparams`` loads
as it is:

* ``patch_embed``: a 4x4 stride-4 conv ``proj`` (no bias) and batch norm ``norm``;
* ``stages.{0,2,4,6}``: ``blocks.{j}``, each a partial conv (``spatial_mixing.partial_conv3``:
  3x3 over the first quarter of the channels, the rest passed through) then an MLP
  (``mlp.0`` 1x1 conv to 2x width, ``mlp.1`` batch norm, activation, ``mlp.3`` 1x1 conv back),
  plus the input; ``stages.{1,3,5}``: patch merging, a 2x2 stride-2 conv ``reduction`` to
  twice the width and batch norm ``norm``;
* head: global pool, ``avgpool_pre_head.1`` (1x1 conv to 1280, no bias), activation, ``head``.

T0 and T1 use exact GELU, T2 ... L relu. Stochastic depth is the identity at inference; no
factory sets a layer scale (PaddleClas passes every structural argument positionally, so a
training config's ``Arch`` can only add ``pconv_fw_type``, whose two forms compute alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.arguments import TRAINING, Param, by_name, no_effect, one_of
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.legacy_safe import gelu
from ppinfer.models.registry import register_model

N_DIV = 4  # the partial conv mixes dim // 4 channels
MLP_RATIO = 2
FEATURE_DIM = 1280


@dataclass(frozen=True)
class Size:
    embed_dim: int
    depths: tuple[int, int, int, int]
    act: str  # "GELU" | "RELU"


# PaddleClas's NET_CONFIG (the other entries are alike for every size: 4x4 patches, 2x2
# merging, patch norm, 1280 features, no layer scale, batch norm).
SIZES = {
    "T0": Size(40, (1, 2, 8, 2), "GELU"),
    "T1": Size(64, (1, 2, 8, 2), "GELU"),
    "T2": Size(96, (1, 2, 8, 2), "RELU"),
    "S": Size(128, (1, 2, 13, 2), "RELU"),
    "M": Size(144, (3, 4, 18, 3), "RELU"),
    "L": Size(192, (3, 4, 18, 3), "RELU"),
}

PCONV_FORWARDS = ("split_cat", "slicing")
DROP_PATH = {"T0": 0.0, "T1": 0.02, "T2": 0.05, "S": 0.1, "M": 0.2, "L": 0.3}  # NET_CONFIG
# Constructor arguments a training config's Arch can give PaddleClas's FasterNet_* factories
# (they pass every structural one themselves).
PARAMS: tuple[Param, ...] = (
    Param("pconv_fw_type", "split_cat", check=one_of(*PCONV_FORWARDS)),
    no_effect("fork_feat", False), *TRAINING)
# What PaddleClas's factories pass positionally (NET_CONFIG), the same for every size but the
# first and the last.
FIXED = {"in_chans": 3, "mlp_ratio": 2.0, "n_div": N_DIV, "patch_size": 4, "patch_stride": 4,
         "patch_size_t": 2, "patch_stride_t": 2, "patch_norm": True, "feature_dim": FEATURE_DIM,
         "layer_scale_init_value": 0, "norm_layer": "BN"}


def _params(size: Size, drop_path_rate: float) -> tuple[Param, ...]:
    fixed = {**FIXED, "embed_dim": size.embed_dim, "depths": list(size.depths),
             "drop_path_rate": drop_path_rate, "act_layer": size.act}
    return (*PARAMS, *(by_name(name, value) for name, value in fixed.items()))


def _activation(name: str):
    return gelu if name == "GELU" else F.relu


class PartialConv(nn.Layer):
    """3x3 conv over the first ``dim // 4`` channels; the others pass through."""

    def __init__(self, dim: int, key: str) -> None:
        super().__init__()
        self._mixed = dim // N_DIV
        self._untouched = dim - self._mixed
        self.partial_conv3 = keyed.conv2d(self._mixed, self._mixed, 3, f"{key}.partial_conv3")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        mixed, untouched = paddle.split(x, [self._mixed, self._untouched], axis=1)
        return paddle.concat([self.partial_conv3(mixed), untouched], axis=1)


class MLPBlock(nn.Layer):
    def __init__(self, dim: int, key: str, act: str) -> None:
        super().__init__()
        hidden = dim * MLP_RATIO
        self.spatial_mixing = PartialConv(dim, f"{key}.spatial_mixing")
        self.mlp = nn.Sequential(
            keyed.conv2d(dim, hidden, 1, f"{key}.mlp.0"),
            keyed.batch_norm(hidden, f"{key}.mlp.1"),
            _Activation(act),
            keyed.conv2d(hidden, dim, 1, f"{key}.mlp.3"),
        )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x + self.mlp(self.spatial_mixing(x))


class _Activation(nn.Layer):
    """A parameterless activation layer (holds the MLP's index 2, as in PaddleClas)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._fn = _activation(name)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self._fn(x)


class BasicStage(nn.Layer):
    def __init__(self, dim: int, depth: int, key: str, act: str) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[MLPBlock(dim, f"{key}.blocks.{j}", act)
                                      for j in range(depth)])

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.blocks(x)


class ConvNorm(nn.Layer):
    """A bias-free ``kernel`` x ``kernel`` conv of stride ``kernel`` and batch norm, under
    ``conv_name`` and ``norm``: PaddleClas's PatchEmbed (``proj``) and PatchMerging
    (``reduction``)."""

    def __init__(self, cin: int, cout: int, kernel: int, key: str, conv_name: str) -> None:
        super().__init__()
        self._conv_name = conv_name
        self.add_sublayer(conv_name, keyed.conv2d(cin, cout, kernel, f"{key}.{conv_name}",
                                                  stride=kernel, padding=0))
        self.norm = keyed.batch_norm(cout, f"{key}.norm")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.norm(getattr(self, self._conv_name)(x))


class FasterNet(nn.Layer):
    """FasterNet of ``size``; returns logits ``[N, class_num]``."""

    def __init__(self, size: Size, class_num: int = 1000, *, pconv_fw_type: str = "split_cat",
                 fork_feat: bool = False) -> None:
        super().__init__()
        if pconv_fw_type not in PCONV_FORWARDS:
            raise ValueError(f"pconv_fw_type must be one of {', '.join(PCONV_FORWARDS)}, "
                             f"not {pconv_fw_type!r}")
        dims = [size.embed_dim * 2 ** i for i in range(len(size.depths))]
        with fresh_parameter_names():
            self.patch_embed = ConvNorm(3, dims[0], 4, "patch_embed", "proj")
            layers = []
            for i, (dim, depth) in enumerate(zip(dims, size.depths)):
                layers.append(BasicStage(dim, depth, f"stages.{len(layers)}", size.act))
                if i < len(dims) - 1:
                    layers.append(ConvNorm(dim, 2 * dim, 2, f"stages.{len(layers)}",
                                           "reduction"))
            self.stages = nn.Sequential(*layers)
            self.avgpool_pre_head = nn.Sequential(
                nn.AdaptiveAvgPool2D(1),
                keyed.conv2d(dims[-1], FEATURE_DIM, 1, "avgpool_pre_head.1"),
                _Activation(size.act),
            )
            self.head = keyed.linear(FEATURE_DIM, class_num, "head")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.avgpool_pre_head(self.stages(self.patch_embed(x)))
        return self.head(paddle.flatten(x, start_axis=1))


def _register(suffix: str, size: Size) -> None:
    def factory(class_num: int = 1000, **built) -> nn.Layer:
        return FasterNet(size, class_num, **built)

    factory.__name__ = factory.__qualname__ = f"FasterNet_{suffix}"
    factory.__doc__ = f"FasterNet-{suffix} (PaddleX: FasterNet-{suffix})."
    # ppcls/configs/ImageNet/FasterNet/FasterNet_*.yaml, Infer: ImageNet's defaults (cv2
    # bilinear resize to 256, crop 224).
    register_model(paddlex_name=f"FasterNet-{suffix}",
                   params=_params(size, DROP_PATH[suffix]))(factory)


for _suffix, _size in SIZES.items():
    _register(_suffix, _size)
