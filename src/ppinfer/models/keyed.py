"""Layers whose variable names are their PaddleClas 2.x state-dict keys.

PaddleClas 2.x ("legendary") models name nothing: their parameters get generated names
(``conv2d_17.w_0``) that depend on how many layers a process built before, and their
``*_pretrained.pdparams`` files are keyed by the structured names ``Layer.state_dict()`` gives
(``blocks2.0.dw_conv.bn._mean``). A family built from these helpers, with PaddleClas's own
sublayer attributes, names every variable after that key, so

- a PaddleClas 2.x file loads by variable name, like every other checkpoint ppinfer reads;
- the static program, the dygraph model and a second instance in one process agree on names
  (no process-wide counter), which export and the registry-driven tests rely on.

Every helper takes ``key``, the sublayer's dotted path from the model root.
"""

from __future__ import annotations

from paddle import ParamAttr, nn
from paddle.nn.initializer import Assign, Constant


def conv2d(
    in_channels: int,
    out_channels: int,
    kernel: int,
    key: str,
    stride: int = 1,
    groups: int = 1,
    padding: int | str | None = None,
    bias: bool = False,
) -> nn.Conv2D:
    """Conv2D named ``{key}.weight`` (and ``{key}.bias``); padding defaults to ``(k - 1) // 2``."""
    return nn.Conv2D(
        in_channels,
        out_channels,
        kernel,
        stride=stride,
        padding=(kernel - 1) // 2 if padding is None else padding,
        groups=groups,
        weight_attr=ParamAttr(name=f"{key}.weight"),
        bias_attr=ParamAttr(name=f"{key}.bias") if bias else False,
    )


def batch_norm(channels: int, key: str) -> nn.BatchNorm2D:
    """BatchNorm2D named ``{key}.weight|bias|_mean|_variance``, as its state-dict keys.

    ``BatchNorm2D`` names its running statistics ``name + "_mean"``; a name ending in "." makes
    that the key. (BatchNorm2D, not ``nn.BatchNorm``: see ``layers.named_batch_norm``.)
    """
    return nn.BatchNorm2D(
        channels,
        weight_attr=ParamAttr(name=f"{key}.weight"),
        bias_attr=ParamAttr(name=f"{key}.bias"),
        name=f"{key}.",
    )


def linear(in_features: int, out_features: int, key: str) -> nn.Linear:
    return nn.Linear(
        in_features,
        out_features,
        weight_attr=ParamAttr(name=f"{key}.weight"),
        bias_attr=ParamAttr(name=f"{key}.bias"),
    )


def scalar_parameter(layer: nn.Layer, attribute: str, key: str, value: float):
    """A trainable one-element parameter ``layer.<attribute>`` named ``{key}.{attribute}``."""
    parameter = layer.create_parameter(
        shape=[1], attr=ParamAttr(name=f"{key}.{attribute}"),
        default_initializer=Constant(value),
    )
    layer.add_parameter(attribute, parameter)
    return parameter


def layer_norm(channels: int, key: str, epsilon: float = 1e-5) -> nn.LayerNorm:
    """LayerNorm over the last axis, named ``{key}.weight|bias``."""
    return nn.LayerNorm(
        channels,
        epsilon=epsilon,
        weight_attr=ParamAttr(name=f"{key}.weight"),
        bias_attr=ParamAttr(name=f"{key}.bias"),
    )


def tensor_parameter(
    layer: nn.Layer, attribute: str, key: str, shape: list[int], dtype: str = "float32",
    value=None, trainable: bool = True,
):
    """A parameter ``layer.<attribute>`` of ``shape`` named ``key``: zeros, or the array
    ``value`` (a checkpoint gives the values either way). ``trainable=False`` stands for a
    persistable buffer PaddleClas keeps in its state dict (Swin's ``relative_position_index``),
    so its files load key for key; Paddle's Assign initializer takes no int64 ``value``."""
    parameter = layer.create_parameter(
        shape=shape, dtype=dtype, attr=ParamAttr(name=key, trainable=trainable),
        default_initializer=Constant(0) if value is None else Assign(value),
    )
    parameter.stop_gradient = not trainable
    layer.add_parameter(attribute, parameter)
    return parameter


def parameter(layer: nn.Layer, attribute: str, key: str, shape: list[int], value: float):
    """A trainable float parameter ``layer.<attribute>`` of ``shape``, filled with ``value``,
    named ``{key}.{attribute}`` (ConvNeXt's and MobileNetV4's layer scales ``gamma``)."""
    created = layer.create_parameter(
        shape=list(shape), attr=ParamAttr(name=f"{key}.{attribute}"),
        default_initializer=Constant(value),
    )
    layer.add_parameter(attribute, created)
    return created
