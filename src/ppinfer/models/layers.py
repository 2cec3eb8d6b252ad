"""Building blocks every family shares: fixed-name batch norm, and fixed names in dygraph."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from paddle import ParamAttr, nn
from paddle.utils import unique_name


def named_batch_norm(
    channels: int, name: str, epsilon: float = 1e-5, momentum: float = 0.9
) -> nn.BatchNorm2D:
    """Batch norm whose variables are ``{name}_scale|_offset|_mean|_variance``.

    ``BatchNorm2D``'s ``name`` names the running statistics as static-graph checkpoints store
    them. (``nn.BatchNorm`` can name them too, but in legacy-IR programs it ignores ``eval()``:
    it normalises with batch statistics and overwrites the running ones.)
    """
    return nn.BatchNorm2D(
        channels,
        momentum=momentum,
        epsilon=epsilon,
        weight_attr=ParamAttr(name=f"{name}_scale"),
        bias_attr=ParamAttr(name=f"{name}_offset"),
        name=name,
    )


@contextmanager
def fresh_parameter_names() -> Iterator[None]:
    """Let a second live model take the same fixed parameter names.

    PaddleClas checkpoints are keyed by fixed names, so every instance asks for the same ones;
    dygraph keeps one process-wide set of parameter names and refuses a name twice, so building
    two models (export, then validate) would fail. Construction gets a fresh name checker; the
    layer-name generator is kept so layer and temporary numbering stays globally unique. Static
    mode never consults the checker.
    """
    generator, checker = unique_name.switch()
    unique_name.switch(generator)
    try:
        yield
    finally:
        unique_name.switch(generator, checker)


def paddleclas_padding(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Rows and columns PaddleClas's transformers (``pading_for_not_divisible``) add at the
    bottom and right so patches or windows tile the map: none when both sides are multiples of
    ``multiple``, else ``multiple - side % multiple`` on each side -- a whole extra ``multiple``
    on a side that already was one. Odd, but it is what their models compute."""
    if height % multiple == 0 and width % multiple == 0:
        return 0, 0
    return multiple - height % multiple, multiple - width % multiple
