"""The checks every family's reference test makes (tests/test_paddleclas_reference_<family>.py),
against PaddleClas 2.6's own model code (paddleclas_reference.py):

- a registered size has PaddleClas's state-dict keys and shapes, each key naming its variable,
  and PaddleClas's trainable parameter count (shapes only: built under ``paddle.LazyGuard``);
- PaddleClas's model of one size, with random weights calibrated so scores depend on the photo,
  saves a state dict that ``ppinfer export`` + ``predict`` and ``executor-persistable`` (by
  PaddleX's name) turn into PaddleClas's top-5, scores within ``SCORE_ATOL``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ppinfer.models import get_model

from .conftest import CLASS_NUM
from .paddleclas_reference import (
    Reference,
    assert_agrees,
    build_reference,
    calibration_images,
    export,
    legendary_model,
    photo_batch,
    predicted,
)


def assert_paddleclas_keys_shapes_and_count(root: Path, module: str, name: str, count: int,
                                            paddleclas_name: str | None = None) -> None:
    """ppinfer's ``name`` has the keys and shapes of PaddleClas's ``paddleclas_name`` (default
    ``name``) from ``legendary_models/<module>.py``, which has ``count`` trainable parameters."""
    import paddle

    from ppinfer.models.layers import fresh_parameter_names

    with paddle.LazyGuard(), fresh_parameter_names():  # PaddleClas may fix names too
        theirs = legendary_model(root, module, paddleclas_name or name, class_num=1000)
    with paddle.LazyGuard():
        ours = get_model(name).build(class_num=1000)
    shapes = {key: list(var.shape) for key, var in theirs.state_dict().items()}
    assert {key: list(var.shape) for key, var in ours.state_dict().items()} == shapes
    trainable = sum(math.prod(p.shape) for p in theirs.parameters() if not p.stop_gradient)
    assert trainable == count


def calibrated_reference(root: Path, module: str, name: str, photos: dict[str, Path],
                         out_dir: Path, classifier: str = "fc",
                         varied: bool = True, fit_head: bool = False) -> Reference:
    """PaddleClas's ``name`` with BN statistics from scikit-image's varied photos (``varied``;
    else from ``photos`` themselves), saved in ``out_dir``; its scores depend on the photo.
    ``classifier``: its last Linear's attribute; ``fit_head``: the head fitted by least squares
    instead of teaching the network (a random one that cannot tell the photos apart)."""
    from ppinfer.models.layers import fresh_parameter_names

    out = out_dir / f"{name}_pretrained.pdparams"
    with fresh_parameter_names():  # PaddleClas may fix names that another test took
        ref = build_reference(root, module, name, sorted(photos.values()), out,
                              class_num=CLASS_NUM, head=classifier, high=0.7, fit_head=fit_head,
                              calibration=photo_batch(name, calibration_images())
                              if varied else None)
    assert np.abs(ref.scores - ref.scores[0]).max() > 0.02
    return ref


def assert_export_agrees(ref: Reference, name: str, out: Path) -> Path:
    """``ppinfer export -m name`` of ``ref``'s state dict predicts PaddleClas's scores."""
    exported = export(name, ref.pdparams, out, CLASS_NUM)
    assert_agrees(predicted(["-i", str(ref.photos[0].parent), "--model", str(exported)]), ref)
    return exported


def assert_executor_persistable_agrees(ref: Reference, paddlex_name: str,
                                       params: Path | None = None) -> None:
    """``predict --engine executor-persistable --model-name PADDLEX_NAME -p`` the state dict
    (or ``params``, the same weights in another file)."""
    assert_agrees(predicted(["-i", str(ref.photos[0].parent), "--engine",
                             "executor-persistable", "--model-name", paddlex_name,
                             "-p", str(params or ref.pdparams), "--class-num", str(CLASS_NUM)]),
                  ref)
