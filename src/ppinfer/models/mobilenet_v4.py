"""MobileNetV4 conv small/medium/large and hybrid medium/large, with PaddleClas 2.x's structure,
names and math.

Structure and numerics follow PaddleClas 2.6
``ppcls/arch/backbone/legendary_models/mobilenet_v4.py`` (its ``NET_CONFIG``, width scale 1).
Sublayer attributes are PaddleClas's and every variable is named after its state-dict key
(``models/keyed.py``), so a PaddleClas ``MobileNetV4_conv_small_pretrained.pdparams`` loads as
it is:

* ``conv_stem``: 3x3 stride-2 ConvBnAct (``.conv``, ``.bn``);
* ``blocks.{i}``, one per config row: ``cn`` a ConvBnAct; ``er`` (edge residual) ``conv_exp``
  (k x k, activated) and ``conv_pwl`` (1x1); ``uir`` (universal inverted residual) an optional
  depthwise ``dw_start`` (no activation), ``pw_exp`` (1x1, activated), an optional depthwise
  ``dw_mid`` (activated, carries the stride), ``pw_proj`` (1x1); ``mqa`` (hybrid models:
  multi-query attention) ``norm`` (batch norm), ``query_proj``, with ``kv_stride`` 2 a depthwise
  ``key_down_proj``/``value_down_proj``, ``key_proj``, ``value_proj`` (one shared head), ``proj``;
  the hybrid models scale ``uir`` and ``mqa`` outputs by ``layer_scale.gamma``; a residual where
  the stride is 1 and the width unchanged;
* head: global pool, ``conv_head`` (1x1 ConvBnAct to 1280), ``classifier`` (linear).

Attention scales queries by ``query_dim ** -0.5`` (all heads' width, as PaddleClas does, not
one head's). Dropout and stochastic depth are the identity at inference.
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
    by_name,
    channels,
    default_only,
    no_effect,
)
from ppinfer.models.layers import fresh_parameter_names
from ppinfer.models.legacy_safe import gelu
from ppinfer.models.registry import register_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

CLASS_EXPAND = 1280
UIR, ER, CN, MQA = "uir", "er", "cn", "mqa"

# PaddleClas's NET_CONFIG rows: cn (out, kernel, act, stride); er (out, mid, kernel, act,
# stride); uir (out, mid, start kernel, mid kernel, act, stride; kernel 0: no such conv);
# mqa (out, kv dim, kernel, heads, kv stride, act, stride).
_SMALL_3 = [(UIR, 128, 576, 3, 3, "relu", 2), (UIR, 128, 512, 5, 5, "relu", 1),
            (UIR, 128, 512, 0, 5, "relu", 1), (UIR, 128, 384, 0, 5, "relu", 1),
            (UIR, 128, 512, 0, 3, "relu", 1), (UIR, 128, 512, 0, 3, "relu", 1)]
CONFIGS: dict[str, list[tuple]] = {
    "conv_small": [(CN, 32, 3, "relu", 2), (CN, 32, 1, "relu", 1), (CN, 96, 3, "relu", 2),
                   (CN, 64, 1, "relu", 1), (UIR, 96, 192, 5, 5, "relu", 2)]
    + [(UIR, 96, 192, 0, 3, "relu", 1)] * 4 + [(UIR, 96, 384, 3, 0, "relu", 1)]
    + _SMALL_3 + [(CN, 960, 1, "relu", 1)],
}


def _uir(out: int, rows: list[tuple[int, int, int]], act: str) -> list[tuple]:
    """``uir`` rows of one width: (mid, start kernel, mid kernel) each, the first one
    stride 2."""
    return [(UIR, out, mid, k0, k1, act, 2 if i == 0 else 1)
            for i, (mid, k0, k1) in enumerate(rows)]


def _mqa(out: int, kv_dim: int, heads: int, kv_stride: int, act: str) -> tuple:
    return (MQA, out, kv_dim, 3, heads, kv_stride, act, 1)


def _interleave(rows: list[tuple], attention: tuple, at: list[int]) -> list[tuple]:
    """``rows`` with ``attention`` inserted before each index in ``at``."""
    out = []
    for i, row in enumerate(rows):
        if i in at:
            out.append(attention)
        out.append(row)
    return out


CONFIGS["conv_medium"] = (
    [(ER, 48, 128, 3, "relu", 2)]
    + _uir(80, [(192, 3, 5), (160, 3, 3)], "relu")
    + _uir(160, [(480, 3, 5), (640, 3, 3), (640, 3, 3), (640, 3, 5), (640, 3, 3), (640, 3, 0),
                 (320, 0, 0), (640, 3, 0)], "relu")
    + _uir(256, [(960, 5, 5), (1024, 5, 5), (1024, 3, 5), (1024, 3, 5), (1024, 0, 0),
                 (1024, 3, 0), (512, 3, 5), (1024, 5, 5), (1024, 0, 0), (1024, 0, 0),
                 (512, 5, 0)], "relu")
    + [(CN, 960, 1, "relu", 1)])
_LARGE_2 = [(384, 3, 5)] + [(768, 3, 3)] * 3 + [(768, 3, 5)] + [(768, 5, 3)] * 5 + [(768, 3, 0)]
_LARGE_3 = [(768, 5, 5)] + [(2048, 5, 5)] * 3 + [(2048, 5, 0), (2048, 5, 3), (2048, 5, 0),
                                                 (2048, 5, 0), (2048, 5, 3), (2048, 5, 5)] \
    + [(2048, 5, 0)] * 3
CONFIGS["conv_large"] = (
    [(ER, 48, 96, 3, "relu", 2)] + _uir(96, [(192, 3, 5), (384, 3, 3)], "relu")
    + _uir(192, _LARGE_2, "relu") + _uir(512, _LARGE_3, "relu") + [(CN, 960, 1, "relu", 1)])
CONFIGS["hybrid_medium"] = (
    [(ER, 48, 128, 3, "relu", 2)] + _uir(80, [(192, 3, 5), (160, 3, 3)], "relu")
    + _interleave(_uir(160, [(480, 3, 5), (320, 0, 0), (640, 3, 3), (640, 3, 5), (640, 3, 3),
                             (640, 3, 0), (640, 3, 3), (640, 3, 0)], "relu"),
                  _mqa(160, 64, 4, 2, "relu"), [4, 5, 6, 7])
    + _interleave(_uir(256, [(960, 5, 5), (1024, 5, 5), (1024, 3, 5), (1024, 3, 5), (512, 0, 0),
                             (512, 3, 5), (512, 0, 0), (1024, 0, 0), (1024, 3, 0), (1024, 5, 5),
                             (1024, 5, 0), (1024, 5, 0)], "relu"),
                  _mqa(256, 64, 4, 1, "relu"), [8, 9, 10, 11])
    + [(CN, 960, 1, "relu", 1)])
CONFIGS["hybrid_large"] = (
    [(ER, 48, 96, 3, "gelu", 2)] + _uir(96, [(192, 3, 5), (384, 3, 3)], "gelu")
    + _interleave(_uir(192, _LARGE_2, "gelu"), _mqa(192, 48, 8, 2, "gelu"), [7, 8, 9, 10])
    + _interleave(_uir(512, _LARGE_3 + [(2048, 5, 0)], "gelu"), _mqa(512, 64, 8, 1, "gelu"),
                  [10, 11, 12, 13])
    + [(CN, 960, 1, "gelu", 1)])

# name -> (stem width, stem/head activation, layer scale, preprocess: resize_short, crop).
SIZES = {
    "conv_small": (32, "relu", 0.0, (256, 224)),
    "conv_medium": (32, "relu", 0.0, (256, 224)),
    "conv_large": (24, "relu", 0.0, (256, 224)),
    "hybrid_medium": (32, "relu", 1e-5, (256, 256)),
    "hybrid_large": (24, "gelu", 1e-5, (448, 448)),
}

# PaddleClas's MobileNetV4 constructor arguments a training config's Arch may give (the
# factories fix the others); the dropouts are the identity at inference.
PARAMS: tuple[Param, ...] = (
    Param("class_expand", CLASS_EXPAND, check=channels), default_only("use_fused_attn", False),
    no_effect("drop_rate", 0.0), no_effect("drop_path_rate", 0.0), *TRAINING, *FEATURE_OUTPUTS)


def _params(size: str) -> tuple[Param, ...]:
    """:data:`PARAMS`, and what the size's PaddleClas factory sets (a training config may set
    the others only to their defaults: ppinfer builds the factory's values)."""
    stem, act, layer_scale, _ = SIZES[size]
    fixed = [by_name("config", None), by_name("stages_pattern", None), by_name("scale", 1.0)]
    for name, value, default in (("inplanes", stem, 32), ("act", act, "relu"),
                                 ("layer_scale_init_value", layer_scale, 0.0)):
        fixed.append(default_only(name, default) if value == default else by_name(name, value))
    return (*PARAMS, *fixed)


def _act(name: str | None):
    return {"relu": F.relu, "gelu": gelu, "hardswish": F.hardswish, None: None}[name]


class ConvBnAct(nn.Layer):
    def __init__(self, cin: int, cout: int, kernel: int, key: str, stride: int = 1,
                 groups: int = 1, act: str | None = None) -> None:
        super().__init__()
        self.conv = keyed.conv2d(cin, cout, kernel, f"{key}.conv", stride=stride, groups=groups)
        self.bn = keyed.batch_norm(cout, f"{key}.bn")
        self._act = _act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.bn(self.conv(x))
        return x if self._act is None else self._act(x)


class LayerScale2D(nn.Layer):
    def __init__(self, channels: int, key: str, value: float) -> None:
        super().__init__()
        self.gamma = keyed.parameter(self, "gamma", key, [channels], value)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * self.gamma.reshape([1, -1, 1, 1])


class Residual(nn.Layer):
    """The shortcut and optional layer scale every block type shares."""

    def __init__(self, cin: int, cout: int, stride: int, key: str, layer_scale: float) -> None:
        super().__init__()
        self._shortcut = stride == 1 and cin == cout
        self.layer_scale = (LayerScale2D(cout, f"{key}.layer_scale", layer_scale)
                            if layer_scale > 0 else None)

    def finish(self, x: paddle.Tensor, y: paddle.Tensor) -> paddle.Tensor:
        if self.layer_scale is not None:
            y = self.layer_scale(y)
        return x + y if self._shortcut else y


class EdgeResidual(Residual):
    def __init__(self, cin: int, row: tuple, key: str) -> None:
        _, out, mid, kernel, act, stride = row
        super().__init__(cin, out, stride, key, 0.0)
        self.conv_exp = ConvBnAct(cin, mid, kernel, f"{key}.conv_exp", stride=stride, act=act)
        self.conv_pwl = ConvBnAct(mid, out, 1, f"{key}.conv_pwl")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.finish(x, self.conv_pwl(self.conv_exp(x)))


class UniversalInvertedResidual(Residual):
    def __init__(self, cin: int, row: tuple, key: str, layer_scale: float) -> None:
        _, out, mid, k_start, k_mid, act, stride = row
        super().__init__(cin, out, stride, key, layer_scale)
        self.dw_start = (ConvBnAct(cin, cin, k_start, f"{key}.dw_start", groups=cin)
                         if k_start else None)
        self.pw_exp = ConvBnAct(cin, mid, 1, f"{key}.pw_exp", act=act)
        self.dw_mid = (ConvBnAct(mid, mid, k_mid, f"{key}.dw_mid", stride=stride, groups=mid,
                                 act=act) if k_mid else None)
        self.pw_proj = ConvBnAct(mid, out, 1, f"{key}.pw_proj")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = x if self.dw_start is None else self.dw_start(x)
        y = self.pw_exp(y)
        if self.dw_mid is not None:
            y = self.dw_mid(y)
        return self.finish(x, self.pw_proj(y))


class MobileAttention(Residual):
    """Multi-query attention: ``heads`` query heads over one shared key/value head, keys and
    values optionally downsampled by a depthwise ``kv_stride`` conv."""

    def __init__(self, cin: int, row: tuple, key: str, layer_scale: float) -> None:
        _, out, kv_dim, kernel, heads, kv_stride, _act_name, stride = row
        super().__init__(cin, out, stride, key, layer_scale)
        self._heads, self._kv_dim, self._query_dim = heads, kv_dim, heads * kv_dim
        self._scale = self._query_dim ** -0.5
        self.norm = keyed.batch_norm(cin, f"{key}.norm")
        self.query_proj = keyed.conv2d(cin, self._query_dim, 1, f"{key}.query_proj")
        self.key_down_proj = self.value_down_proj = None
        if kv_stride > 1:
            self.key_down_proj = ConvBnAct(cin, cin, kernel, f"{key}.key_down_proj",
                                           stride=kv_stride, groups=cin)
            self.value_down_proj = ConvBnAct(cin, cin, kernel, f"{key}.value_down_proj",
                                             stride=kv_stride, groups=cin)
        self.key_proj = keyed.conv2d(cin, kv_dim, 1, f"{key}.key_proj")
        self.value_proj = keyed.conv2d(cin, kv_dim, 1, f"{key}.value_proj")
        self.proj = keyed.conv2d(self._query_dim, out, 1, f"{key}.proj")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        y = self.norm(x)
        height, width = y.shape[2], y.shape[3]
        k_in = y if self.key_down_proj is None else self.key_down_proj(y)
        v_in = y if self.value_down_proj is None else self.value_down_proj(y)
        kv_size = k_in.shape[2] * k_in.shape[3]
        # Computed transposed (keys x queries), so no reshape is followed by a transpose into a
        # matmul: oneDNN's reshape_transpose_matmul fusion computes that pattern wrongly here
        # (0.47 off on MobileNetV4_hybrid_medium); the math is PaddleClas's.
        q = self.query_proj(y).reshape([-1, self._heads, self._kv_dim, height * width])
        keys = self.key_proj(k_in).transpose([0, 2, 3, 1]).reshape(
            [-1, 1, kv_size, self._kv_dim])  # [N, 1, HW', d]
        values = self.value_proj(v_in).reshape([-1, 1, self._kv_dim, kv_size])  # [N, 1, d, HW']
        weights = F.softmax((keys @ q) * self._scale, axis=2)  # [N, heads, HW', HW]
        attention = (values @ weights).reshape([-1, self._query_dim, height, width])
        return self.finish(x, self.proj(attention))


def _block(row: tuple, cin: int, key: str, layer_scale: float) -> nn.Layer:
    kind = row[0]
    if kind == CN:
        _, out, kernel, act, stride = row
        return ConvBnAct(cin, out, kernel, key, stride=stride, act=act)
    if kind == ER:
        return EdgeResidual(cin, row, key)
    if kind == UIR:
        return UniversalInvertedResidual(cin, row, key, layer_scale)
    return MobileAttention(cin, row, key, layer_scale)


class MobileNetV4(nn.Layer):
    """MobileNetV4 ``size`` (a key of :data:`SIZES`); returns logits ``[N, class_num]``."""

    def __init__(self, size: str, class_num: int = 1000, *, class_expand: int = CLASS_EXPAND,
                 drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 use_fused_attn: bool = False) -> None:
        super().__init__()
        if use_fused_attn:
            raise ValueError("use_fused_attn: ppinfer's MobileNetV4 implements PaddleClas's "
                             "unfused attention only (the fused one scales queries otherwise)")
        stem, act, layer_scale, _ = SIZES[size]
        rows = CONFIGS[size]
        with fresh_parameter_names():
            self.conv_stem = ConvBnAct(3, stem, 3, "conv_stem", stride=2, act=act)
            widths = [stem] + [row[1] for row in rows]
            self.blocks = nn.Sequential(*[_block(row, widths[i], f"blocks.{i}", layer_scale)
                                          for i, row in enumerate(rows)])
            self.conv_head = ConvBnAct(widths[-1], class_expand, 1, "conv_head", act=act)
            self.classifier = keyed.linear(class_expand, class_num, "classifier")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv_head(F.adaptive_avg_pool2d(self.blocks(self.conv_stem(x)), 1))
        return self.classifier(paddle.flatten(x, start_axis=1))


def _register(size: str) -> None:
    resize, crop = SIZES[size][3]

    def factory(class_num: int = 1000, **built) -> nn.Layer:
        return MobileNetV4(size, class_num, **built)

    name = f"MobileNetV4_{size}"
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"MobileNetV4 {size} (PaddleX: {name})."
    # ppcls/configs/ImageNet/MobileNetV4/MobileNetV4_*.yaml, Infer: cv2 bilinear resize.
    register_model(input_shape=(3, crop, crop),
                   preprocess=PreprocessConfig(resize_short=resize, crop_size=(crop, crop)),
                   params=_params(size))(factory)


for _size in SIZES:
    _register(_size)
