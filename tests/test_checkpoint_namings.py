"""A .pdparams is read in whichever naming its keys use, detected from the keys, never by
position: variable names, the model's own structured names (ppinfer's dygraph state dict), and a
2.0-era file's own StructuredToParameterName@@ table."""

from __future__ import annotations

import numpy as np
import pytest

from ppinfer.errors import CheckpointError
from ppinfer.models import get_model
from ppinfer.models.program import build_static_model

MODEL = "MobileNetV3_small_x0_35"


def dygraph_state(class_num: int = 4, seed: int = 0):
    """ppinfer's own dygraph model with random weights: {structured key: (variable name, array)}."""
    import paddle

    paddle.seed(seed)
    net = get_model(MODEL).build(class_num=class_num)
    net.eval()
    return {key: (param.name, param.numpy()) for key, param in net.state_dict().items()}


def save_pdparams(path, mapping) -> None:
    import paddle

    paddle.save({k: paddle.to_tensor(v) for k, v in mapping.items()}, str(path))


def scope_arrays(static_model) -> dict[str, np.ndarray]:
    return {
        name: np.asarray(static_model.scope.find_var(name).get_tensor())
        for name in static_model.expected
    }


def test_ppinfer_dygraph_state_dict_loads_by_structured_name(tmp_path):
    state = dygraph_state()
    path = tmp_path / "own.pdparams"
    save_pdparams(path, {key: array for key, (_, array) in state.items()})
    model = build_static_model(get_model(MODEL), class_num=4)
    model.load_checkpoint(path)
    loaded = scope_arrays(model)
    for key, (_, array) in state.items():
        np.testing.assert_array_equal(loaded[model.structured[key]], array)


def test_2_0_era_file_is_read_through_its_own_table(tmp_path):
    import paddle

    paddle.seed(1)
    net = get_model(MODEL).build(class_num=4)
    # Structured keys that are not ppinfer's (as a 2.0-era model's attribute names); paddle.save
    # writes the file's own StructuredToParameterName@@ table from the parameters' names.
    params = {f"era.{key}": param for key, param in net.state_dict().items()}
    path = tmp_path / "era.pdparams"
    paddle.save(params, str(path))
    model = build_static_model(get_model(MODEL), class_num=4)
    model.load_checkpoint(path)
    loaded = scope_arrays(model)
    for param in params.values():
        np.testing.assert_array_equal(loaded[param.name], param.numpy())


def test_a_file_in_no_known_naming_names_the_namings_tried(tmp_path):
    state = dygraph_state()
    path = tmp_path / "odd.pdparams"
    save_pdparams(path, {f"w{i}": array for i, (_, (_, array)) in enumerate(state.items())})
    model = build_static_model(get_model(MODEL), class_num=4)
    with pytest.raises(CheckpointError) as info:
        model.load_checkpoint(path)
    message = str(info.value)
    assert "in any naming ppinfer knows (variable names;" in message
    assert "ppinfer's structured names" in message and "w0" in message
    # Same shapes as the model: the architecture fits, so --model-name is not the fix.
    assert message.endswith(f"its parameter shapes are {MODEL}'s, so only its key naming is one "
                            "ppinfer does not read: rename its keys into one of those namings.")
    assert "--model-name" not in message


def test_key_table_rows_translate_through_lookups_and_skip_parts_they_lack():
    from ppinfer.checkpoints.keymap import KeyMap

    keymap = KeyMap(
        (("blocks.{block}.conv{branch}.{tail}", "b.{block}.{branch}.{tail}"),
         ("{unit}.{param}", "stem.{unit}.{param}")),
        {"block": ("res2a", "res2b"), "branch": ("x", "y"), "unit": {"_conv": "conv"}},
    )
    assert keymap("blocks.1.conv0.bn._mean") == "b.res2b.x.bn._mean"
    assert keymap("_conv.weight") == "stem.conv.weight"
    assert keymap("blocks.2.conv0.bn._mean") is None  # no third block in the lookup
    assert keymap("blocks.x.conv0.weight") is None  # a sequence lookup takes an index
    assert keymap("_batch_norm.weight") is None  # the mapping lacks the part
    assert keymap("fc.weight.extra") is None


def test_a_table_of_generated_names_is_not_taken_for_a_naming():
    """paddle.save of PaddleClas 2.x's models writes a table of names Paddle generated in
    creation order (conv2d_0.w_0, ...): reading by it would be reading by position."""
    from ppinfer.checkpoints.namings import CheckpointState, candidate_namings

    state = CheckpointState({"stem.0.conv.weight": np.zeros(1), "fc.weight": np.zeros(1)})
    state.structured_names = {"stem.0.conv.weight": "conv2d_0.w_0", "fc.weight": "linear_0.w_0"}
    labels = [naming.label for naming in candidate_namings(state, {}, ())]
    assert labels == ["variable names", "ppinfer's structured names"]
    state.structured_names = {"conv1_1._conv.weight": "conv1_1_weights", "out.weight": "fc_0.w_0"}
    labels = [naming.label for naming in candidate_namings(state, {}, ())]
    assert "the file's own StructuredToParameterName@@ table" in labels
