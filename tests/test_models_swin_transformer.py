"""Swin Transformer against PaddleClas 2.6's own ``legendary_models/swin_transformer.py`` (the
wheel, see paddleclas_reference.py): the tiny size with random weights and its classifier fitted
to its features so each photo has its own top-1, saved as a state dict; ppinfer exports it and
predicts with the analysis engine, the exported program's executor and OpenVINO, and reads the
state dict with the persistable executor: top-5 equal and scores within 1e-5 of PaddleClas's
forward + softmax. Every size PaddleX lists is checked for PaddleClas's keys, shapes and
parameter count (built lazily, no forward); odd image sizes on a narrowed model of PaddleClas's
own class."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.swin_transformer import Arch, SwinTransformer

from .conftest import CLASS_NUM
from .paddleclas_reference import (
    assert_agrees,
    build_reference,
    legendary_model,
    predicted,
    run_cli,
)

MODULE = "swin_transformer"
SIZES = ["tiny_patch4_window7_224", "small_patch4_window7_224", "base_patch4_window7_224",
         "base_patch4_window12_384", "large_patch4_window7_224", "large_patch4_window12_384"]
NAMES = [f"SwinTransformer_{size}" for size in SIZES]
TINY = NAMES[0]


def test_the_six_paddlex_sizes_are_registered_with_their_input_and_preprocessing():
    assert list_models("SwinTransformer*") == sorted(NAMES)
    for name in NAMES:
        spec = get_model(name)
        side = 384 if name.endswith("384") else 224
        pre = spec.preprocess
        assert (spec.family, spec.card_name, spec.input_shape) == (
            "swin_transformer", name, (3, side, side))
        # PaddleX's SwinTransformer_*.yaml Infer: Pillow bicubic short side 256 (438 at 384)
        assert (pre.resize_short, pre.crop_size) == ({224: 256, 384: 438}[side], (side, side))
        assert (pre.interpolation, pre.backend) == ("bicubic", "pil")


def test_paddleclas_training_arguments_are_accepted_and_others_refused():
    import paddle

    from ppinfer.errors import ConfigError

    spec = get_model(TINY)
    assert spec.arguments().values["drop_path_rate"] == 0.2
    given = spec.arguments({"drop_path_rate": 0.1, "use_fused_attn": True,
                            "use_imagenet22kto1k_pretrained": True})
    with paddle.LazyGuard():
        spec.build(class_num=2, arguments=given)
    with pytest.raises(ConfigError, match="sets ape, which ppinfer's"):
        spec.arguments({"ape": True})


@pytest.mark.parametrize("name", NAMES)
def test_keys_shapes_and_count_are_paddleclas_ones(name, paddleclas_root):
    import paddle

    with paddle.LazyGuard():
        theirs = legendary_model(paddleclas_root, MODULE, name, class_num=1000)
        ours = get_model(name).build(class_num=1000)
    assert all(key == var.name for key, var in ours.state_dict().items())
    shapes = {key: list(var.shape) for key, var in theirs.state_dict().items()}
    assert {key: list(var.shape) for key, var in ours.state_dict().items()} == shapes

    def trainable(model):
        return sum(math.prod(p.shape) for p in model.parameters() if not p.stop_gradient)

    assert trainable(ours) == trainable(theirs)


@pytest.fixture(scope="module")
def reference(paddleclas_root, photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("swin") / f"{TINY}_pretrained.pdparams"
    ref = build_reference(paddleclas_root, MODULE, TINY, sorted(photos.values()), out,
                          class_num=CLASS_NUM, high=0.7, fit_head=True)
    assert np.abs(ref.scores - ref.scores[0]).max() > 0.02
    return ref


@pytest.fixture(scope="module")
def exported(reference, tmp_path_factory):
    """ppinfer's export, with its own check (the analysis engine at batch 2: it once caught a
    oneDNN pass that broke the window partition)."""
    out = tmp_path_factory.mktemp("swin-export") / "export"
    run_cli(["export", "-m", reference.name, "-p", str(reference.pdparams), "-o", str(out),
             "--class-num", str(CLASS_NUM)])
    return out


@pytest.mark.parametrize("engine", ["analysis", "executor-inference", "openvino"])
def test_export_then_each_engine_agrees_with_paddleclas_forward(reference, exported, engine):
    """Batches of three photos; OpenVINO reads the legacy program (PaddleClas's own Swin export
    has operators OpenVINO cannot convert; ppinfer's has none)."""
    if engine == "openvino":
        pytest.importorskip("openvino", reason="OpenVINO is not installed")
    assert_agrees(predicted(["-i", str(reference.photos[0].parent), "--model", str(exported),
                             "--engine", engine, "--batch-size", "3"]), reference)


def test_executor_persistable_reads_the_paddleclas_state_dict(reference):
    assert_agrees(predicted(["-i", str(reference.photos[0].parent), "--engine",
                             "executor-persistable", "--model-name", reference.name,
                             "-p", str(reference.pdparams), "--class-num", str(CLASS_NUM)]),
                  reference)


@pytest.mark.parametrize("size", [(224, 224), (200, 230), (224, 230), (97, 101)])
def test_odd_image_sizes_pad_windows_and_merges_as_paddleclas(size, paddleclas_root):
    """Sizes that are no multiple of the patch, the window or two: PaddleClas pads each (a whole
    window on a side that already was a multiple when the other is not). Its own
    SwinTransformer class with window 7 and shifted blocks, narrowed to two stages of width 32
    so the test builds in a second."""
    import paddle

    paddle.disable_static()
    paddle.seed(5)
    theirs = legendary_model(paddleclas_root, MODULE, "SwinTransformer", class_num=CLASS_NUM,
                             embed_dim=32, depths=[2, 2], num_heads=[1, 2], window_size=7)
    ours = SwinTransformer(Arch(32, (2, 2), (1, 2), 7, 224, 0.0), CLASS_NUM)
    state = {key: value + paddle.randn(value.shape) * 0.3 if value.dtype == paddle.float32
             else value for key, value in theirs.state_dict().items()}
    for model in (theirs, ours):
        model.set_state_dict(state)
        model.eval()
    x = paddle.to_tensor(np.random.default_rng(0).random((2, 3, *size), dtype="float32"))
    with paddle.no_grad():
        expected = theirs(x).numpy()
        np.testing.assert_allclose(ours(x).numpy(), expected, rtol=0, atol=1e-5)
    assert np.abs(expected[0] - expected[1]).max() > 1e-2  # the scores depend on the image
