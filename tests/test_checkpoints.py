"""Paddle checkpoints are read without building anything, and fitted to an architecture with
every mismatch named."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from ppinfer.checkpoints import load_checkpoint, match_state
from ppinfer.checkpoints.lod_tensor import read_tensor_file
from ppinfer.errors import CheckpointError


def test_per_variable_files_written_by_paddle_read_back_exactly(resnet50_vd_checkpoint):
    import paddle  # noqa: F401  (the checkpoint fixture used Paddle's own save_vars)

    state = load_checkpoint(resnet50_vd_checkpoint)
    assert len(state) == 277  # 267 conv/BN variables of ResNet50_vd + fc, PaddleClas names
    assert state["fc_0.w_0"].shape == (2048, 10) and state["fc_0.w_0"].dtype == np.float32
    assert state["bnv1_1_variance"].min() >= 0.5  # the randomised running statistics
    assert "res5c_branch2c_weights" in state


def test_truncated_variable_file_is_named(resnet50_vd_checkpoint, tmp_path):
    data = (resnet50_vd_checkpoint / "fc_0.w_0").read_bytes()
    bad = tmp_path / "fc_0.w_0"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        read_tensor_file(bad)
    assert str(info.value).startswith(f"{bad} is not a readable Paddle tensor file (file ends")


def test_pdparams_state_dict_is_read_with_tuple_values(tmp_path):
    path = tmp_path / "m.pdparams"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    with open(path, "wb") as fh:
        pickle.dump({"fc_0.w_0": w, "fc_0.b_0": ("fc_0.b_0", np.ones(3, np.float32)),
                     "StructuredToParameterName@@": {"fc.weight": "fc_0.w_0"}}, fh, protocol=4)
    state = load_checkpoint(path)
    assert set(state) == {"fc_0.w_0", "fc_0.b_0"}
    np.testing.assert_array_equal(state["fc_0.w_0"], w)
    # paddle.static.save's path prefix works too
    assert set(load_checkpoint(tmp_path / "m")) == {"fc_0.w_0", "fc_0.b_0"}


def test_missing_and_unknown_checkpoint_paths(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist: check the -p/--params path"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is not a checkpoint ppinfer reads"):
        load_checkpoint(tmp_path / "w.h5")


EXPECTED = {"conv_weights": (4, 3, 3, 3), "fc_0.w_0": (4, 5), "fc_0.b_0": (5,)}


def state(**overrides):
    base = {name: np.zeros(shape, np.float32) for name, shape in EXPECTED.items()}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_matching_ignores_optimizer_state():
    fitted = match_state(EXPECTED, state(**{"fc_0.w_0_velocity_0": np.zeros(1),
                                            "learning_rate_0": np.zeros(1),
                                            "@LR_DECAY_COUNTER@": np.zeros(1)}))
    assert set(fitted) == set(EXPECTED)


def test_matching_names_missing_unexpected_and_wrong_shape():
    with pytest.raises(CheckpointError, match=r"lacks 1 of M's 3 variables \(conv_weights\); "
                                              r"it has instead conv_w"):
        match_state(EXPECTED, state(conv_weights=None, conv_w=np.zeros(1)), model_name="M")
    with pytest.raises(CheckpointError, match=r"has 1 variables M does not use \(extra\)"):
        match_state(EXPECTED, state(extra=np.zeros(1)), model_name="M")
    with pytest.raises(CheckpointError, match=r"conv_weights is \[4, 3, 5, 5\] in ck, M makes "
                                              r"\[4, 3, 3, 3\]: check --model-name"):
        match_state(EXPECTED, state(conv_weights=np.zeros((4, 3, 5, 5))), "ck", "M")


def test_class_num_mismatch_spells_out_the_fix():
    with pytest.raises(CheckpointError) as info:
        match_state(EXPECTED, state(**{"fc_0.w_0": np.zeros((4, 102)),
                                       "fc_0.b_0": np.zeros(102)}), "ck", "M")
    assert str(info.value) == "fc_0.w_0 is [4, 102] in ck, M makes [4, 5]: pass --class-num 102."


def test_model_file_check_ignores_size_one_dimensions():
    """Paddle's post-training quantization saves [1, N] scales for variables declared [N]."""
    from ppinfer.checkpoints.integrity import _fits

    assert _fits((4,), (1, 4)) and _fits((1, 4), (4,)) and _fits((-1, 4), (3, 4))
    assert not _fits((4,), (5,)) and not _fits((2, 2), (4,)) and not _fits((4, 3), (4,))
