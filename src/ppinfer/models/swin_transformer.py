"""Swin Transformer tiny ... large, with PaddleClas 2.x's structure, names and math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/legendary_models/
swin_transformer.py`` with its factories' defaults, for the six sizes PaddleX 3.7 lists.
Attributes are PaddleClas's and every variable is named after its state-dict key
(``models/keyed.py``), so a PaddleClas or PaddleX ``SwinTransformer_*`` state dict loads as it is:

* ``patch_embed``: a 4x4 stride-4 conv (``proj``) and ``norm`` over the patch tokens (the image
  first zero-padded at the bottom and right as PaddleClas pads: ``layers.paddleclas_padding``);
* ``layers.{0-3}``: ``blocks.{j}``, each window attention (``norm1``, ``attn.qkv``, a learned
  ``attn.relative_position_bias_table`` indexed by ``attn.relative_position_index``,
  ``attn.proj``) over ``window`` x ``window`` windows, shifted by half a window in every odd
  block (with PaddleClas's -100 mask between regions the shift brought together), then an MLP
  (``norm2``, ``mlp.fc1``, exact GELU, ``mlp.fc2``); the feature map is zero-padded to whole
  windows the same way. Every stage but the last ends in ``downsample``: 2x2 neighbours
  concatenated, ``norm``, ``reduction`` (a linear without bias) to twice the width;
* ``norm``, the mean over tokens, ``head``.

``relative_position_index`` is a buffer PaddleClas saves in its state dicts (a fixed function of
the window); here it is a non-trainable parameter under the same key, so its files load key for
key, and the forward computes the same index as a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.arguments import TRAINING, no_effect
from ppinfer.models.layers import fresh_parameter_names, paddleclas_padding
from ppinfer.models.legacy_safe import gelu, roll
from ppinfer.models.registry import register_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

PATCH = 4
MASKED = -100.0  # PaddleClas's score between tokens a shift made neighbours


@dataclass(frozen=True)
class Arch:
    embed_dim: int
    depths: tuple[int, ...]
    heads: tuple[int, ...]
    window: int
    image_size: int
    drop_path_rate: float  # PaddleClas's factory default (training only)


ARCHS: dict[str, Arch] = {
    "tiny_patch4_window7_224": Arch(96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 224, 0.2),
    "small_patch4_window7_224": Arch(96, (2, 2, 18, 2), (3, 6, 12, 24), 7, 224, 0.3),
    "base_patch4_window7_224": Arch(128, (2, 2, 18, 2), (4, 8, 16, 32), 7, 224, 0.5),
    "base_patch4_window12_384": Arch(128, (2, 2, 18, 2), (4, 8, 16, 32), 12, 384, 0.5),
    "large_patch4_window7_224": Arch(192, (2, 2, 18, 2), (6, 12, 24, 48), 7, 224, 0.1),
    "large_patch4_window12_384": Arch(192, (2, 2, 18, 2), (6, 12, 24, 48), 12, 384, 0.1),
}

# PaddleX's SwinTransformer_*.yaml Infer transforms (PaddleClas's configs alike): Pillow's
# bicubic resize of the short side, then the centre crop.
PREPROCESS = {
    224: PreprocessConfig(resize_short=256, crop_size=(224, 224), interpolation="bicubic",
                          backend="pil"),
    384: PreprocessConfig(resize_short=438, crop_size=(384, 384), interpolation="bicubic",
                          backend="pil"),
}

# PaddleClas constructor/factory arguments a training config's ``Arch`` may set that leave the
# inference network as it is: dropout and drop path are identities at inference, fused attention
# and linear layers (recent GPUs only) compute the same function, checkpointing saves training
# memory, and the ImageNet-22k switches choose pretrained weights to download.
INFERENCE_IDENTITIES = {"drop_rate": 0.0, "attn_drop_rate": 0.0, "use_checkpoint": False,
                        "use_fused_attn": False, "use_fused_linear": False,
                        "use_imagenet22k_pretrained": False,
                        "use_imagenet22kto1k_pretrained": False}


def relative_position_index(window: int) -> np.ndarray:
    """``[window², window²]``: for tokens i and j of a window, the row of the bias table for
    their offset (dy, dx), ``(dy + window - 1) * (2 * window - 1) + dx + window - 1``."""
    rows, cols = np.meshgrid(np.arange(window), np.arange(window), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()])  # 2, window²
    offsets = coords[:, :, None] - coords[:, None, :] + window - 1
    return (offsets[0] * (2 * window - 1) + offsets[1]).astype(np.int64)


def shift_mask(height: int, width: int, window: int, shift: int) -> np.ndarray:
    """``[windows, window², window²]``: 0 between tokens of one region of the shifted map,
    ``MASKED`` between tokens a cyclic shift made neighbours (PaddleClas's ``get_attn_mask``)."""
    regions = np.zeros((height, width), dtype=np.float32)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for number, (rows, cols) in enumerate((r, c) for r in cuts for c in cuts):
        regions[rows, cols] = number
    windows = regions.reshape(height // window, window, width // window, window)
    windows = windows.transpose(0, 2, 1, 3).reshape(-1, window * window)
    return np.where(windows[:, None, :] != windows[:, :, None], MASKED, 0.0).astype(np.float32)


class WindowAttention(nn.Layer):
    def __init__(self, dim: int, window: int, heads: int, key: str) -> None:
        super().__init__()
        self.window, self.heads = window, heads
        self.scale = (dim // heads) ** -0.5
        keyed.tensor_parameter(self, "relative_position_bias_table",
                               f"{key}.relative_position_bias_table",
                               [(2 * window - 1) ** 2, heads])
        # kept for the state dict (PaddleClas saves this buffer); the forward uses the same
        # index computed from the window, as a constant of the program
        keyed.tensor_parameter(self, "relative_position_index",
                               f"{key}.relative_position_index", [window ** 2, window ** 2],
                               dtype="int64", trainable=False)
        self._index = relative_position_index(window).reshape(-1)
        self.qkv = keyed.linear(dim, dim * 3, f"{key}.qkv")
        self.proj = keyed.linear(dim, dim, f"{key}.proj")

    def position_bias(self) -> paddle.Tensor:
        """``[1, heads, window², window²]`` from the table."""
        tokens = self.window ** 2
        bias = paddle.index_select(self.relative_position_bias_table, paddle.assign(self._index))
        return bias.reshape([tokens, tokens, -1]).transpose([2, 0, 1]).unsqueeze(0)

    def forward(self, x: paddle.Tensor, mask: paddle.Tensor | None) -> paddle.Tensor:
        tokens, dim = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape([-1, tokens, 3, self.heads, dim // self.heads])
        qkv = qkv.transpose([2, 0, 3, 1, 4])
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose([0, 1, 3, 2]) + self.position_bias()  # ``@``: legacy_safe.py
        if mask is not None:
            windows = mask.shape[0]
            attn = attn.reshape([-1, windows, self.heads, tokens, tokens]) + mask.unsqueeze(
                1).unsqueeze(0)
            attn = attn.reshape([-1, self.heads, tokens, tokens])
        x = (F.softmax(attn, axis=-1) @ v).transpose([0, 2, 1, 3]).reshape([-1, tokens, dim])
        return self.proj(x)


class Mlp(nn.Layer):
    def __init__(self, dim: int, key: str) -> None:
        super().__init__()
        self.fc1 = keyed.linear(dim, dim * 4, f"{key}.fc1")
        self.fc2 = keyed.linear(dim * 4, dim, f"{key}.fc2")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc2(gelu(self.fc1(x)))


def pad_bottom_right(x: paddle.Tensor, height: int, width: int) -> paddle.Tensor:
    """``x`` ([N, H, W, C]) zero-padded at the bottom and right by ``height`` and ``width``."""
    if height == 0 and width == 0:
        return x
    return F.pad(x, [0, 0, 0, height, 0, width, 0, 0])


class SwinBlock(nn.Layer):
    def __init__(self, dim: int, heads: int, window: int, shift: int, key: str) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = keyed.layer_norm(dim, f"{key}.norm1")
        self.attn = WindowAttention(dim, window, heads, f"{key}.attn")
        self.norm2 = keyed.layer_norm(dim, f"{key}.norm2")
        self.mlp = Mlp(dim, f"{key}.mlp")

    def forward(self, x: paddle.Tensor, size: tuple[int, int]) -> paddle.Tensor:
        height, width = size
        ws, dim = self.window, x.shape[2]
        y = self.norm1(x).reshape([-1, height, width, dim])
        pad_h, pad_w = paddleclas_padding(height, width, ws)
        y = pad_bottom_right(y, pad_h, pad_w)
        padded_h, padded_w = height + pad_h, width + pad_w
        mask = None
        if self.shift:
            y = roll(y, -self.shift, (1, 2))
            mask = paddle.assign(shift_mask(padded_h, padded_w, ws, self.shift))
        # PaddleClas's reshape sequence, step for step: Paddle Inference's oneDNN passes fuse a
        # transpose with the reshape after it, and infer a wrong shape when that reshape goes
        # straight to [-1, ws * ws, dim] (export's check failed at batch 2)
        windows = y.reshape([-1, padded_h // ws, ws, padded_w // ws, ws, dim])
        windows = windows.transpose([0, 1, 3, 2, 4, 5]).reshape([-1, ws, ws, dim])
        y = self.attn(windows.reshape([-1, ws * ws, dim]), mask).reshape([-1, ws, ws, dim])
        y = y.reshape([-1, padded_h // ws, padded_w // ws, ws, ws, dim])
        y = y.transpose([0, 1, 3, 2, 4, 5]).reshape([-1, padded_h, padded_w, dim])
        if self.shift:
            y = roll(y, self.shift, (1, 2))
        if padded_h != height or padded_w != width:
            y = y[:, :height, :width, :]
        x = x + y.reshape([-1, height * width, dim])
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Layer):
    """Each 2x2 neighbourhood concatenated (in PaddleClas's order), normalised, halved."""

    def __init__(self, dim: int, key: str) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias_attr=False,
                                   weight_attr=paddle.ParamAttr(name=f"{key}.reduction.weight"))
        self.norm = keyed.layer_norm(4 * dim, f"{key}.norm")

    def forward(self, x: paddle.Tensor, size: tuple[int, int]) -> paddle.Tensor:
        height, width = size
        dim = x.shape[2]
        x = pad_bottom_right(x.reshape([-1, height, width, dim]), height % 2, width % 2)
        x = paddle.concat([x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :],
                           x[:, 0::2, 1::2, :], x[:, 1::2, 1::2, :]], axis=-1)
        return self.reduction(self.norm(x.reshape([-1, x.shape[1] * x.shape[2], 4 * dim])))


class Stage(nn.Layer):
    def __init__(self, dim: int, depth: int, heads: int, window: int, downsample: bool,
                 key: str) -> None:
        super().__init__()
        self.blocks = nn.LayerList([
            SwinBlock(dim, heads, window, 0 if j % 2 == 0 else window // 2, f"{key}.blocks.{j}")
            for j in range(depth)
        ])
        self.downsample = PatchMerging(dim, f"{key}.downsample") if downsample else None

    def forward(self, x: paddle.Tensor, size: tuple[int, int]):
        for block in self.blocks:
            x = block(x, size)
        if self.downsample is not None:
            x = self.downsample(x, size)
            size = ((size[0] + 1) // 2, (size[1] + 1) // 2)
        return x, size


class PatchEmbed(nn.Layer):
    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = keyed.conv2d(3, embed_dim, PATCH, "patch_embed.proj", stride=PATCH,
                                 padding=0, bias=True)
        self.norm = keyed.layer_norm(embed_dim, "patch_embed.norm")

    def forward(self, x: paddle.Tensor):
        pad_h, pad_w = paddleclas_padding(x.shape[2], x.shape[3], PATCH)
        if pad_h or pad_w:
            x = F.pad(x, [0, 0, 0, 0, 0, pad_h, 0, pad_w])
        x = self.proj(x)
        size = (x.shape[2], x.shape[3])
        return self.norm(x.flatten(2).transpose([0, 2, 1])), size


class SwinTransformer(nn.Layer):
    """Swin Transformer ``size`` (a key of :data:`ARCHS`, or an :class:`Arch`); returns logits
    ``[N, class_num]``."""

    def __init__(self, size: str | Arch, class_num: int = 1000) -> None:
        super().__init__()
        if not isinstance(size, Arch) and size not in ARCHS:
            raise ValueError(f"size must be one of {', '.join(ARCHS)}, not {size!r}")
        arch = size if isinstance(size, Arch) else ARCHS[size]
        stages = len(arch.depths)
        with fresh_parameter_names():
            self.patch_embed = PatchEmbed(arch.embed_dim)
            self.layers = nn.LayerList([
                Stage(arch.embed_dim * 2 ** i, arch.depths[i], arch.heads[i], arch.window,
                      i < stages - 1, f"layers.{i}")
                for i in range(stages)
            ])
            features = arch.embed_dim * 2 ** (stages - 1)
            self.norm = keyed.layer_norm(features, "norm")
            self.head = keyed.linear(features, class_num, "head")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x, size = self.patch_embed(x)
        for stage in self.layers:
            x, size = stage(x, size)
        x = F.adaptive_avg_pool1d(self.norm(x).transpose([0, 2, 1]), 1)
        return self.head(paddle.flatten(x, 1))


def _register(size: str) -> None:
    arch = ARCHS[size]

    def factory(class_num: int = 1000, **_inference_identities) -> nn.Layer:
        return SwinTransformer(size, class_num)

    factory.__name__ = factory.__qualname__ = f"SwinTransformer_{size}"
    factory.__doc__ = f"Swin Transformer {size} (PaddleX: SwinTransformer_{size})."
    register_model(
        input_shape=(3, arch.image_size, arch.image_size),
        preprocess=PREPROCESS[arch.image_size],
        params=(*(no_effect(name, default) for name, default in INFERENCE_IDENTITIES.items()),
                no_effect("drop_path_rate", arch.drop_path_rate), *TRAINING),
    )(factory)


for _size in ARCHS:
    _register(_size)
