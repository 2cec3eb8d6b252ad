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


def gelu(x):
    """Exact GELU, ``x * Phi(x)``, as ``paddle.nn.GELU()`` computes it (``approximate=False``).

    Written with ``erf`` because Paddle 3's ``F.gelu`` cannot be built into a legacy-IR program
    (it calls the PIR-only kernel binding: "argument must be Value, but got Variable"), and
    export writes the legacy program beside the PIR one.
    """
    import paddle

    return 0.5 * x * (1.0 + paddle.erf(x * 0.7071067811865476))
