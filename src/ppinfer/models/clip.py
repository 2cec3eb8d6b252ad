"""CLIP vision transformers fine-tuned as classifiers, with PaddleClas 2.x's structure, names and
math.

Structure and numerics follow PaddleClas 2.6 ``ppcls/arch/backbone/model_zoo/foundation_vit.py``
(``VisionTransformer`` with its ``_CLIP_diff`` settings) for the two sizes PaddleX 3.7 lists.
Attributes are PaddleClas's and every variable is named after its state-dict key
(``models/keyed.py``), so a PaddleClas or PaddleX ``CLIP_vit_base_patch16_224`` state dict loads
as it is:

* ``patch_embed.proj``: a ``patch`` x ``patch`` conv with stride ``patch``, no bias (the image is
  first zero-padded at the bottom and right as PaddleClas pads: ``layers.paddleclas_padding``);
* ``cls_token`` before the patch tokens, ``pos_embed`` added (resized bicubically when the
  input's patch grid is not the one trained), ``ln_pre``;
* ``blocks.{i}``: pre-norm attention (``norm1``, ``attn.qkv``, ``attn.proj``) and MLP
  (``norm2``, ``mlp.fc1``, exact GELU, ``mlp.fc2``), each added to its input;
* the pooled token through ``norm`` and ``head.fc_head``. PaddleClas pools the class token for
  ViT-L/14, but for ViT-B/16 it drops the class token first and so pools the first *patch*
  token; ppinfer does the same, as trained models depend on it;
* ``proj`` (the CLIP image projection) is kept for the state dict; a classifier does not use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import paddle
import paddle.nn.functional as F
from paddle import nn

from ppinfer.models import keyed
from ppinfer.models.arguments import TRAINING, Param, default_only, no_effect
from ppinfer.models.layers import fresh_parameter_names, paddleclas_padding
from ppinfer.models.legacy_safe import gelu
from ppinfer.models.registry import register_model

PROJECTION_DIM = 512  # CLIP's image-text embedding width (``proj``'s second axis)


@dataclass(frozen=True)
class Arch:
    image_size: int
    patch: int
    width: int
    depth: int
    heads: int
    drop_class_token: bool  # PaddleClas's 'remove_cls_token_in_forward'


ARCHS: dict[str, Arch] = {
    "vit_base_patch16_224": Arch(224, 16, 768, 12, 12, drop_class_token=True),
    "vit_large_patch14_224": Arch(224, 14, 1024, 24, 16, drop_class_token=False),
}

# PaddleClas's constructor arguments a training config's ``Arch`` may set (PaddleX's CLIP configs
# set the first three), with its defaults. Fused attention and fused linear layers compute the
# same function (PaddleClas uses them on recent GPUs only); dropout and drop path are identities
# at inference; ``head_init_scale`` only scales the initial head.
PARAMS: tuple[Param, ...] = (
    default_only("return_embed", False),  # True: embeddings, not class scores
    *(no_effect(name, default) for name, default in (
        ("use_fused_attn", False), ("use_fused_linear", False), ("drop_rate", 0.0),
        ("attn_drop_rate", 0.0), ("drop_path_rate", 0.0), ("head_init_scale", 0.001))),
    *TRAINING,
)


class Attention(nn.Layer):
    def __init__(self, dim: int, heads: int, key: str) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = keyed.linear(dim, dim * 3, f"{key}.qkv")
        self.proj = keyed.linear(dim, dim, f"{key}.proj")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        tokens, dim = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape([-1, tokens, 3, self.heads, dim // self.heads])
        qkv = qkv.transpose([2, 0, 3, 1, 4])
        q, k, v = qkv[0], qkv[1], qkv[2]
        # ``@``, not paddle.matmul: see models/legacy_safe.py
        attn = F.softmax((q @ k.transpose([0, 1, 3, 2])) * self.scale, axis=-1)
        x = (attn @ v).transpose([0, 2, 1, 3]).reshape([-1, tokens, dim])
        return self.proj(x)


class Mlp(nn.Layer):
    def __init__(self, dim: int, hidden: int, key: str) -> None:
        super().__init__()
        self.fc1 = keyed.linear(dim, hidden, f"{key}.fc1")
        self.fc2 = keyed.linear(hidden, dim, f"{key}.fc2")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc2(gelu(self.fc1(x)))


class Block(nn.Layer):
    def __init__(self, dim: int, heads: int, key: str) -> None:
        super().__init__()
        self.norm1 = keyed.layer_norm(dim, f"{key}.norm1")
        self.attn = Attention(dim, heads, f"{key}.attn")
        self.norm2 = keyed.layer_norm(dim, f"{key}.norm2")
        self.mlp = Mlp(dim, dim * 4, f"{key}.mlp")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Layer):
    def __init__(self, patch: int, width: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = keyed.conv2d(3, width, patch, "patch_embed.proj", stride=patch, padding=0)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        """Patch tokens ``[N, grid_h * grid_w, width]`` of the zero-padded image."""
        pad_h, pad_w = paddleclas_padding(x.shape[2], x.shape[3], self.patch)
        if pad_h or pad_w:
            x = F.pad(x, [0, 0, 0, 0, 0, pad_h, 0, pad_w])
        return self.proj(x).flatten(2).transpose([0, 2, 1])


class Head(nn.Layer):
    def __init__(self, width: int, class_num: int) -> None:
        super().__init__()
        self.fc_head = keyed.linear(width, class_num, "head.fc_head")

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc_head(x)


class CLIPVisionTransformer(nn.Layer):
    """CLIP ``size`` (a key of :data:`ARCHS`, or an :class:`Arch`); returns logits
    ``[N, class_num]``."""

    def __init__(self, size: str | Arch, class_num: int = 1000, return_embed: bool = False,
                 **_inference_identities) -> None:
        super().__init__()
        if not isinstance(size, Arch) and size not in ARCHS:
            raise ValueError(f"size must be one of {', '.join(ARCHS)}, not {size!r}")
        if return_embed:
            raise ValueError("return_embed=True makes CLIP return embeddings, not class scores: "
                             "ppinfer exports classifiers (return_embed: False)")
        arch = self.arch = size if isinstance(size, Arch) else ARCHS[size]
        self.grid = arch.image_size // arch.patch
        with fresh_parameter_names():
            self.patch_embed = PatchEmbed(arch.patch, arch.width)
            keyed.tensor_parameter(self, "pos_embed", "pos_embed",
                                   [1, self.grid ** 2 + 1, arch.width])
            keyed.tensor_parameter(self, "cls_token", "cls_token", [1, 1, arch.width])
            keyed.tensor_parameter(self, "proj", "proj", [arch.width, PROJECTION_DIM])
            self.ln_pre = keyed.layer_norm(arch.width, "ln_pre")
            self.blocks = nn.LayerList([
                Block(arch.width, arch.heads, f"blocks.{i}") for i in range(arch.depth)
            ])
            self.norm = keyed.layer_norm(arch.width, "norm")
            self.head = Head(arch.width, class_num)

    def position_embedding(self, grid: tuple[int, int]) -> paddle.Tensor:
        """``pos_embed`` for a ``grid`` of patches: the patch part resized bicubically (as
        PaddleClas's ``resize_pos_embed``) when the grid is not the trained one."""
        if grid == (self.grid, self.grid):
            return self.pos_embed
        width = self.arch.width
        patches = self.pos_embed[:, 1:].reshape([-1, self.grid, self.grid, width])
        patches = F.interpolate(patches.transpose([0, 3, 1, 2]), size=list(grid),
                                mode="bicubic", align_corners=False)
        patches = patches.flatten(2).transpose([0, 2, 1])
        return paddle.concat([self.pos_embed[:, :1], patches], axis=1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        patch = self.arch.patch
        pad_h, pad_w = paddleclas_padding(x.shape[2], x.shape[3], patch)
        grid = ((x.shape[2] + pad_h) // patch, (x.shape[3] + pad_w) // patch)
        x = self.patch_embed(x)
        cls = self.cls_token + paddle.zeros_like(x[:, :1])  # one class token per image
        x = paddle.concat([cls, x], axis=1) + self.position_embedding(grid)
        x = self.ln_pre(x)
        for block in self.blocks:
            x = block(x)
        pooled = x[:, 1] if self.arch.drop_class_token else x[:, 0]
        return self.head(self.norm(pooled))


def _register(size: str) -> None:
    def factory(class_num: int = 1000, **arguments) -> nn.Layer:
        return CLIPVisionTransformer(size, class_num, **arguments)

    factory.__name__ = factory.__qualname__ = f"CLIP_{size}"
    factory.__doc__ = f"CLIP {size} fine-tuned as a classifier (PaddleX: CLIP_{size})."
    register_model(params=PARAMS)(factory)


for _size in ARCHS:
    _register(_size)
