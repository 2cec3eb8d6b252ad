"""The checks every family's PaddleClas reference test makes (tests/test_paddleclas_reference_*.py
for the families PaddleX 3.7 lists beyond the first five): export + predict and
executor-persistable agree with PaddleClas's forward; a size has PaddleClas's keys and shapes."""

from __future__ import annotations

import gc
from pathlib import Path

from ppinfer.modelfiles.modelcard import read_card
from ppinfer.models import get_model
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from .conftest import CLASS_NUM
from .paddleclas_reference import (
    SCORE_ATOL,
    Reference,
    assert_agrees,
    export,
    legendary_model,
    predicted,
)


def check_export_and_predict(ref: Reference, out: Path, preprocess: PreprocessConfig,
                             atol: float = SCORE_ATOL) -> None:
    """``ppinfer export`` of PaddleClas's state dict writes ``preprocess`` into the card, and
    ``ppinfer predict`` on it gives PaddleClas's top-5 and scores (within ``atol``)."""
    export(ref.name, ref.pdparams, out, CLASS_NUM)
    assert read_card(out / "inference.yml").preprocess == preprocess
    assert_agrees(predicted(["-i", str(ref.photos[0].parent), "--model", str(out)]), ref, atol)


def check_executor_persistable(ref: Reference, model_name: str) -> None:
    """The executor-persistable engine reads PaddleClas's state dict by ``model_name``."""
    assert_agrees(predicted(["-i", str(ref.photos[0].parent), "--engine", "executor-persistable",
                             "--model-name", model_name, "-p", str(ref.pdparams),
                             "--class-num", str(CLASS_NUM)]), ref)


def check_keys_and_shapes(root: Path, module: str, name: str, lazy: bool = True) -> None:
    """ppinfer's ``name`` has the state-dict keys and shapes of PaddleClas's own (built lazily,
    unless its constructor cannot be: then for real and freed at once)."""
    import contextlib

    import paddle

    with paddle.LazyGuard() if lazy else contextlib.nullcontext():
        theirs = legendary_model(root, module, name, class_num=1000)
    shapes = {key: list(var.shape) for key, var in theirs.state_dict().items()}
    del theirs
    gc.collect()
    with paddle.LazyGuard():
        ours = get_model(name).build(class_num=1000)
    assert {key: list(var.shape) for key, var in ours.state_dict().items()} == shapes
