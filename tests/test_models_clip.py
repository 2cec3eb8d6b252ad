"""CLIP family against PaddleClas 2.6's own ``model_zoo/foundation_vit.py`` (the wheel, see
paddleclas_reference.py): ViT-B/16 with random weights, its classifier fitted to its features so
each photo has its own top-1, saved as a state dict; ppinfer exports and predicts it (analysis
engine) and reads it with the executor; top-5 equal and scores within 1e-5 of PaddleClas's
forward + softmax. ViT-L/14 is checked for PaddleClas's keys and shapes (built lazily, no
forward)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ppinfer.models import get_model, list_models
from ppinfer.models.clip import CLIPVisionTransformer
from ppinfer.pipeline.preprocess_config import IMAGENET_PREPROCESS

from .conftest import CLASS_NUM
from .paddleclas_reference import (
    assert_agrees,
    build_reference,
    legendary_model,
    predicted,
    run_cli,
)

MODULE = "model_zoo.foundation_vit"
NAMES = ["CLIP_vit_base_patch16_224", "CLIP_vit_large_patch14_224"]
# Trainable parameters with 1000 classes, counted once from PaddleClas 2.6's own built models
# (ViT-L takes 20 s to build for real, so the test compares with these).
EXACT = {"CLIP_vit_base_patch16_224": 86_961_640, "CLIP_vit_large_patch14_224": 304_729_064}


def lazy(name: str, class_num: int = 1000):
    import paddle

    with paddle.LazyGuard():
        return get_model(name).build(class_num=class_num)


def test_both_paddlex_sizes_are_registered_under_their_shared_name():
    assert list_models("CLIP*") == NAMES
    for name in NAMES:
        spec = get_model(name)
        assert (spec.family, spec.card_name, spec.input_shape) == ("clip", name, (3, 224, 224))


def test_preprocessing_is_paddlex_infer_config():
    """PaddleX's CLIP_vit_*_224.yaml Infer: resize_short 256 (cv2 bilinear), crop 224, ImageNet
    mean/std -- PaddleClas's defaults."""
    assert all(get_model(name).preprocess == IMAGENET_PREPROCESS for name in NAMES)


def test_paddlex_config_arguments_are_accepted_and_embeddings_refused():
    from ppinfer.errors import ConfigError

    spec = get_model("CLIP_vit_base_patch16_224")
    accepted = spec.arguments({"return_embed": False, "use_fused_attn": True,
                               "use_fused_linear": True, "pretrained": True})
    assert accepted.values["use_fused_attn"] is True and accepted.built == {}
    with pytest.raises(ConfigError, match="return_embed"):
        spec.arguments({"return_embed": True})
    with pytest.raises(ConfigError, match="img_size"):
        spec.arguments({"img_size": 336})
    with pytest.raises(ValueError, match="return_embed=True makes CLIP return embeddings"):
        CLIPVisionTransformer("vit_base_patch16_224", 2, return_embed=True)
    with pytest.raises(ValueError, match="size must be one of"):
        CLIPVisionTransformer("vit_huge_patch14_224")


@pytest.mark.parametrize("name", NAMES)
def test_keys_shapes_and_count_are_paddleclas_ones(name, paddleclas_root):
    import paddle

    ours = lazy(name)
    assert all(key == var.name for key, var in ours.state_dict().items())
    with paddle.LazyGuard():  # head_init_scale 1: its set_value needs real memory
        theirs = legendary_model(paddleclas_root, MODULE, name, class_num=1000,
                                 head_init_scale=1)
    shapes = {key: list(var.shape) for key, var in theirs.state_dict().items()}
    # PaddleClas declares ``proj`` as [width] and its Assign initializer makes it
    # [width, 512] when materialised (lazily built, it is still the declaration); the saved
    # ViT-B state dict the tests below load has the real shape.
    width = ours.arch.width
    assert shapes["proj"] == [width]
    shapes["proj"] = [width, 512]
    assert {key: list(var.shape) for key, var in ours.state_dict().items()} == shapes
    trainable = sum(math.prod(p.shape) for p in ours.parameters() if not p.stop_gradient)
    assert trainable == EXACT[name]


@pytest.fixture(scope="module")
def reference(paddleclas_root, photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "CLIP_vit_base_patch16_224_pretrained.pdparams"
    ref = build_reference(paddleclas_root, MODULE, NAMES[0], sorted(photos.values()), out,
                          class_num=CLASS_NUM, high=0.7, fit_head=True)
    assert np.abs(ref.scores - ref.scores[0]).max() > 0.02
    return ref


def test_export_and_predict_agree_with_paddleclas_forward(reference, tmp_path):
    # --no-validate: export's own check compares with ppinfer's training program; this test
    # compares with PaddleClas's forward itself, and skipping the check halves ViT-B's export.
    out = tmp_path / "export"
    run_cli(["export", "-m", reference.name, "-p", str(reference.pdparams), "-o", str(out),
             "--class-num", str(CLASS_NUM), "--no-validate"])
    assert_agrees(predicted(["-i", str(reference.photos[0].parent), "--model", str(out),
                             "--batch-size", "3"]), reference)


def test_executor_persistable_reads_the_paddleclas_state_dict(reference):
    assert_agrees(predicted(["-i", str(reference.photos[0].parent), "--engine",
                             "executor-persistable", "--model-name", reference.name,
                             "-p", str(reference.pdparams), "--class-num", str(CLASS_NUM)]),
                  reference)


@pytest.mark.parametrize("size", [(200, 230), (224, 230)])
def test_odd_image_sizes_pad_and_resize_positions_as_paddleclas(size, paddleclas_root):
    """200x230 is no multiple of 16: both zero-pad to 208x240 and resize ``pos_embed`` from
    14x14 to 13x15 bicubically; 224x230 pads to 240x240 (PaddleClas pads a whole patch on a
    side that is a multiple when the other is not). PaddleClas's own VisionTransformer class
    with CLIP ViT-B/16's settings, narrowed to one block of width 64 so it builds in a second."""
    import paddle

    from ppinfer.models.clip import Arch

    paddle.disable_static()
    paddle.seed(3)
    theirs = legendary_model(paddleclas_root, MODULE, "VisionTransformer",
                             model_name="CLIP_vit_base_patch16_224", class_num=CLASS_NUM,
                             embed_dim=64, depth=1, num_heads=2, qkv_bias=True,
                             head_init_scale=1)
    ours = CLIPVisionTransformer(Arch(224, 16, 64, 1, 2, drop_class_token=True), CLASS_NUM)
    # random everything (layer norms around 1), so every parameter shows in the scores
    state = {key: value + paddle.randn(value.shape) * 0.3
             for key, value in theirs.state_dict().items()}
    for model in (theirs, ours):
        model.set_state_dict(state)
        model.eval()
    x = paddle.to_tensor(np.random.default_rng(0).random((2, 3, *size), dtype="float32"))
    with paddle.no_grad():
        expected = theirs(x).numpy()
        np.testing.assert_allclose(ours(x).numpy(), expected, rtol=0, atol=1e-5)
    assert np.abs(expected[0] - expected[1]).max() > 1e-2  # the scores depend on the image
