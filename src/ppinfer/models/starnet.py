"""StarNet S1 ... S4, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/model_zoo/starnet.py`` (its
``NET_CONFIG``). Sublayer attributes are PaddleClas's and every variable is named after its
state-dict key (``models/keyed.py``), so a PaddleClas ``StarNet_S1_pretrained.pdparams`` loads
as it is:

* ``stem.0``: 3x3 stride-2 conv (with bias) and batch norm, to 32 channels, then relu6;
* ``stages.{i}``: ``.0`` a 3x3 stride-2 conv + batch norm to ``base_dim * 2**i``, then blocks
  ``.{j}``: depthwise 7x7 ``dwconv`` (+ batch norm), two 1x1 convs ``f1``, ``f2`` to
  ``mlp_ratio`` x width, the "star" ``relu6(f1) * f2``, 1x1 ``g`` (+ batch norm) back, depthwise
  7x7 ``dwconv2``, plus the input;
* head: batch norm ``norm``, global pool, ``head`` (linear).

Every conv has a bias. Stochastic depth is the identity at inference.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.arguments import TRAINING, Param, by_name, channels, no_effect
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.registry import register_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

STEM_CHANNELS = 32
# PaddleClas's NET_CONFIG: base width, blocks per stage.
SIZES = {
    "S1": (24, (2, 2, 8, 3)),
    "S2": (32, (1, 2, 6, 2)),
    "S3": (32, (2, 2, 8, 4)),
    "S4": (32, (3, 3, 12, 5)),
}
# ppcls/configs/ImageNet/StarNet/StarNet_S*.yaml, Infer: cv2 bilinear resize to 224, crop 224.
STARNET_PREPROCESS = PreprocessConfig(resize_short=224, crop_size=(224, 224))
# PaddleClas's StarNet constructor arguments a training config's Arch may give.
PARAMS: tuple[Param, ...] = (Param("mlp_ratio", 4, check=channels),
                             no_effect("drop_path_rate", 0.0), *TRAINING)


class ConvBN(nn.Layer):
    """Conv (with bias), and batch norm unless ``bn`` is false: PaddleClas's ConvBN, a
    Sequential of ``conv`` and ``bn``."""

    def __init__(self, cin: int, cout: int, kernel: int, key: str, stride: int = 1,
                 groups: int = 1, bn: bool = True) -> None:
        super().__init__()
        self.conv = keyed.conv2d(cin, cout, kernel, f"{key}.conv", stride=stride, groups=groups,
                                 bias=True)
        self.bn = keyed.batch_norm(cout, f"{key}.bn") if bn else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv(x)
        return x if self.bn is None else self.bn(x)


class Block(nn.Layer):
    def __init__(self, dim: int, mlp_ratio: int, key: str) -> None:
        super().__init__()
        hidden = mlp_ratio * dim
        self.dwconv = ConvBN(dim, dim, 7, f"{key}.dwconv", groups=dim)
        self.f1 = ConvBN(dim, hidden, 1, f"{key}.f1", bn=False)
        self.f2 = ConvBN(dim, hidden, 1, f"{key}.f2", bn=False)
        self.g = ConvBN(hidden, dim, 1, f"{key}.g")
        self.dwconv2 = ConvBN(dim, dim, 7, f"{key}.dwconv2", groups=dim, bn=False)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.dwconv(x)
        y = F.relu6(self.f1(y)) * self.f2(y)
        return x + self.dwconv2(self.g(y))


class StarNet(nn.Layer):
    """StarNet of base width ``base_dim`` and ``depths``; returns logits ``[N, class_num]``."""

    def __init__(self, base_dim: int, depths: tuple[int, ...], class_num: int = 1000, *,
                 mlp_ratio: int = 4, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        with fresh_parameter_names():
            self.stem = nn.Sequential(ConvBN(3, STEM_CHANNELS, 3, "stem.0", stride=2))
            stages, cin = [], STEM_CHANNELS
            for i, depth in enumerate(depths):
                dim = base_dim * 2 ** i
                stages.append(nn.Sequential(
                    ConvBN(cin, dim, 3, f"stages.{i}.0", stride=2),
                    *[Block(dim, mlp_ratio, f"stages.{i}.{j + 1}") for j in range(depth)]))
                cin = dim
            self.stages = nn.LayerList(stages)
            self.norm = keyed.batch_norm(cin, "norm")
            self.head = keyed.linear(cin, class_num, "head")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = F.relu6(self.stem(x))
        for stage in self.stages:
            x = stage(x)
        x = F.adaptive_avg_pool2d(self.norm(x), 1)
        return self.head(paddle.flatten(x, start_axis=1))


def _register(suffix: str) -> None:
    base_dim, depths = SIZES[suffix]

    def factory(class_num: int = 1000, **built) -> nn.Layer:
        return StarNet(base_dim, depths, class_num, **built)

    factory.__name__ = factory.__qualname__ = f"StarNet_{suffix}"
    factory.__doc__ = f"StarNet-{suffix} (PaddleX: StarNet-{suffix})."
    register_model(paddlex_name=f"StarNet-{suffix}", preprocess=STARNET_PREPROCESS,
                   params=(*PARAMS, by_name("base_dim", base_dim),
                           by_name("depths", list(depths))))(factory)


for _suffix in SIZES:
    _register(_suffix)
