"""Export's self-check (issue 20, item 4): the exported program is measured against the training
program by the same Executor, and only that decides whether the export is written; Paddle
Inference's optimised kernels are measured too and their own difference reported apart, so an
engine's rounding never refuses a correct export."""

from __future__ import annotations

import numpy as np
import pytest

import ppinfer
from ppinfer.export import VALIDATION_ATOL
from ppinfer.models import get_model
from ppinfer.runtime.paddle_env import paddle_env

from .paddleclas_reference import calibrate_batch_norm, calibration_images, photo_batch, run_cli

MODEL = "PPLCNet_x0_25"
SHARPNESS = 10_000.0  # the classifier's logits per unit of feature: rounding shows in scores


@pytest.fixture(scope="module")
def sharp_checkpoint(tmp_path_factory):
    """A PP-LCNet whose two classes tie on the shipped photo with large logits: a 1e-7 change
    in the pooled features (what fused kernels round differently) moves its scores visibly.
    A legitimate model (a sharp classifier on a boundary), not a broken one."""
    import paddle

    from ppinfer.pipeline.decode import load_image
    from ppinfer.pipeline.preprocess import preprocess_image
    from ppinfer.pipeline.sample import sample_image_path

    paddle.disable_static()
    paddle.seed(0)
    spec = get_model(MODEL)
    net = spec.build(class_num=2)
    calibrate_batch_norm(net, paddle.to_tensor(photo_batch(MODEL, calibration_images())))
    net.eval()
    photo = preprocess_image(load_image(sample_image_path()), spec.preprocess)
    features = []
    hook = net.fc.register_forward_pre_hook(lambda layer, args: features.append(args[0].numpy()))
    with paddle.no_grad():
        net(paddle.to_tensor(photo[None]))
    hook.remove()
    direction = np.random.default_rng(0).standard_normal(features[0].shape[1]).astype("float32")
    net.fc.weight.set_value(np.stack([direction * SHARPNESS, np.zeros_like(direction)], 1))
    net.fc.bias.set_value(np.array([-(features[0][0] @ direction) * SHARPNESS, 0], "float32"))
    path = tmp_path_factory.mktemp("sharp") / "best_model.pdparams"
    paddle.save(net.state_dict(), str(path))
    return path


def test_an_engines_own_difference_is_reported_apart_not_refused(sharp_checkpoint, tmp_path):
    with pytest.warns(ppinfer.ExportNote):  # the assumed dropout at least
        result = ppinfer.export(MODEL, sharp_checkpoint, tmp_path / "out", class_num=2)
    assert result.max_abs_diff <= VALIDATION_ATOL  # the Executor: the program as written
    assert result.engine_max_abs_diff is not None
    engine_said = [note for note in result.notes if "Paddle Inference's optimised" in note]
    if paddle_env().can_run_pir:
        # Paddle 3's analysis (PIR) rounds this model's features differently (5e-3 measured):
        # the self-check that compared it alone refused this correct export.
        assert result.engine_max_abs_diff > VALIDATION_ATOL
    if result.engine_max_abs_diff > VALIDATION_ATOL:
        assert len(engine_said) == 1 and "--engine executor-inference" in engine_said[0]
    else:
        assert engine_said == []


def test_the_cli_prints_both_differences(sharp_checkpoint, tmp_path):
    printed = run_cli(["export", "-m", MODEL, "-p", str(sharp_checkpoint), "--class-num", "2",
                       "-o", str(tmp_path / "out")])
    assert "(Executor)" in printed and "(Paddle Inference's optimised kernels)" in printed
    assert "Exported PPLCNet_x0_25" in printed
