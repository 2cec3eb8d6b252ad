"""``ppinfer.quantize()``: a float model -> an int8 model directory for one engine, verified
against fp32 on held-out images. ``ppinfer quantize`` calls this too."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence


def quantize(
    calib: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    engine: str = "analysis",
    samples: int | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
):
    """Quantize ``model`` (default: the built-in model) for ``engine`` to int8 in ``output``.

    ``calib``: image files, folders or globs (one or a list), split by a hash of each path
    into the images that calibrate (at most ``samples``, default 64) and some 30% held out
    to verify.
    ``engine``: ``"analysis"`` (Paddle's post-training quantization), ``"openvino"`` (NNCF) or
    ``"onnxruntime"`` (``quantize_static``). Returns a
    :class:`ppinfer.quantization.quantize.QuantizeResult`: ``.output``, ``.verification``
    (``.agreement.top1_rate``, ``.agreement.max_score_diff``, ``.warning(engine)``) and
    ``.meets_target`` (top-1 agreement with fp32 at least 97%). ``progress``: a callable
    given one line (what is being quantized, on how many images) before the long part starts.
    """
    from ppinfer.quantization import calibration
    from ppinfer.quantization.quantize import quantize_model

    if model is None:
        from ppinfer.api.builtin_model import default_model_dir

        model = default_model_dir()
    images = [calib] if isinstance(calib, (str, os.PathLike)) else list(calib)
    return quantize_model(model, images, output, engine=engine, force=force, progress=progress,
                          samples=calibration.DEFAULT_SAMPLES if samples is None else samples)
