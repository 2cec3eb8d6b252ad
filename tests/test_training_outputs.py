"""Training outputs read as the checkpoint they hold (issue 20, item 3): PaddleClas's
``best_model`` prefix and output folders, PaddleX's output folder, ``.pdema``, a distillation
state dict's parts; and messages that name the keys the file holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ppinfer.checkpoints import read_checkpoint
from ppinfer.checkpoints.training_outputs import checkpoint_file, parts_of
from ppinfer.errors import CheckpointError

from .paddleclas_reference import legendary_model, run_cli


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    """A PP-LCNet x0.25 state dict, keyed as PaddleClas 2.x saves it."""
    import paddle

    from ppinfer.models import get_model

    paddle.disable_static()
    paddle.seed(3)
    net = get_model("PPLCNet_x0_25").build(class_num=4)
    return {key: value.numpy() for key, value in net.state_dict().items()}


def save(state: dict, path: Path) -> Path:
    import paddle

    path.parent.mkdir(parents=True, exist_ok=True)
    paddle.save(state, str(path))
    return path


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_the_best_model_prefix_means_its_pdparams_as_paddleclas_loads_it(state, tmp_path):
    """PaddleClas's output/<Arch>/: best_model.pdparams, .pdopt, .pdstates beside a
    best_model/ folder holding model.pdparams; -p output/<Arch>/best_model is the prefix."""
    run = tmp_path / "output" / "PPLCNet_x0_25"
    best = save(state, run / "best_model.pdparams")
    save({"lr": np.zeros(1, np.float32)}, run / "best_model.pdopt")
    save({"metric": np.ones(1, np.float32)}, run / "best_model.pdstates")
    save(state, run / "best_model" / "model.pdparams")
    assert checkpoint_file(run / "best_model") == best
    assert checkpoint_file(run) == best  # the run's folder: its best model
    assert checkpoint_file(run / "best_model" / "") == run / "best_model.pdparams"
    assert same_state(read_checkpoint(run / "best_model").state, state)


def test_folders_resolve_to_the_best_model_they_hold(state, tmp_path):
    paddlex = tmp_path / "paddlex_output"
    best = save(state, paddlex / "best_model" / "best_model.pdparams")
    assert checkpoint_file(paddlex) == best  # PaddleX: output/best_model/best_model.pdparams
    only_model = save(state, tmp_path / "best_model" / "model.pdparams")
    assert checkpoint_file(tmp_path / "best_model") == only_model
    assert same_state(read_checkpoint(paddlex).state, state)


def test_a_pdema_file_reads_as_the_state_dict_it_is(state, tmp_path):
    ema = save(state, tmp_path / "best_model.pdema")
    assert same_state(read_checkpoint(ema).state, state)


def test_a_distillation_state_dict_gives_its_student_unless_asked(state, tmp_path):
    teacher = {key: value + 1 for key, value in state.items()}
    both = {**{f"Teacher.{k}": v for k, v in teacher.items()},
            **{f"Student.{k}": v for k, v in state.items()}}
    path = save(both, tmp_path / "distill.pdparams")
    assert parts_of(both) == ["Teacher", "Student"] and parts_of(state) == []
    read = read_checkpoint(path)
    assert (read.part, read.parts) == ("Student", ["Teacher", "Student"])
    assert same_state(read.state, state)
    assert same_state(read_checkpoint(path, part="Teacher").state, teacher)
    with pytest.raises(CheckpointError, match="parts Teacher, Student: --checkpoint-part Tutor"):
        read_checkpoint(path, part="Tutor")
    with pytest.raises(CheckpointError, match="one model's state dict"):
        read_checkpoint(save(state, tmp_path / "one.pdparams"), part="Teacher")
    no_student = save({f"Big.{k}": v for k, v in state.items()}
                      | {f"Small.{k}": v for k, v in state.items()}, tmp_path / "dml.pdparams")
    with pytest.raises(CheckpointError, match="parts Big, Small: which to export"):
        read_checkpoint(no_student)


def test_a_fine_tuned_resnet_without_class_num_names_the_files_own_key(paddleclas_root,
                                                                       tmp_path):
    """PaddleClas 2.x's ResNet18_vd fine-tuned to 102 classes: its file holds fc.weight, not
    ppinfer's variable fc_0.w_0."""
    import paddle

    paddle.disable_static()
    model = legendary_model(paddleclas_root, "resnet", "ResNet18_vd", class_num=102)
    path = save(model.state_dict(), tmp_path / "best_model.pdparams")
    printed = run_cli(["export", "-m", "ResNet18_vd", "-p", str(tmp_path / "best_model"),
                       "-o", str(tmp_path / "out")], exit_code=2)
    assert "fc.weight is [512, 102] in " + str(path) in printed
    assert "pass --class-num 102" in printed and "fc_0" not in printed


def test_optimizer_state_beside_the_weights_is_refused_naming_the_weights(state, tmp_path):
    save({"lr": np.zeros(1, np.float32)}, tmp_path / "best_model.pdopt")
    with pytest.raises(CheckpointError, match=r"optimizer state, not the model's weights: "
                                              r"pass .*best_model\.pdparams"):
        read_checkpoint(tmp_path / "best_model.pdopt")


def test_a_part_is_picked_with_a_single_model_config_and_a_config_part_saved_alone_loads(
        state, tmp_path):
    """--checkpoint-part picks from the checkpoint also when the config trains one model; a
    distillation config's part saved alone (PaddleClas's best_model_student.pdparams) loads as
    it is, and its card names no part."""
    import yaml

    from . import paddleclas_configs as configs

    single = tmp_path / "single.yaml"
    single.write_text(configs.PULC_IMAGE_ORIENTATION.replace("PPLCNet_x1_0", "PPLCNet_x0_25")
                      .replace("use_last_conv: False", "use_last_conv: True"), encoding="utf-8")
    teacher = {k: v * 0.5 if k.startswith("fc.") else v for k, v in state.items()}
    both = save({**{f"Teacher.{k}": v for k, v in teacher.items()},
                 **{f"Student.{k}": v for k, v in state.items()}}, tmp_path / "both.pdparams")
    out = tmp_path / "teacher"
    run_cli(["export", "-c", str(single), "-p", str(both), "-o", str(out),
             "--checkpoint-part", "Teacher", "--no-validate"])
    card = yaml.safe_load((out / "inference.yml").read_text())
    assert card["ppinfer"]["checkpoint_part"] == "Teacher"
    distill = tmp_path / "distill.yaml"
    distill.write_text(configs.PPLCNET_SSLD.replace("PPLCNet_x1_0", "PPLCNet_x0_25").replace(
        "&class_num 1000", "&class_num 4"), encoding="utf-8")
    student = save(state, tmp_path / "best_model_student.pdparams")
    out = tmp_path / "student"
    run_cli(["export", "-c", str(distill), "-p", str(student), "-o", str(out), "--no-validate"])
    assert "checkpoint_part" not in yaml.safe_load((out / "inference.yml").read_text())["ppinfer"]


def test_the_python_api_warns_what_it_assumed_as_export_notes(state, tmp_path):
    import warnings

    import ppinfer

    path = save(state, tmp_path / "best_model.pdparams")
    with pytest.warns(ppinfer.ExportNote, match="Assumed PaddleClas's defaults for what the "
                                                "checkpoint cannot show"):
        result = ppinfer.export("PPLCNet_x0_25", path, tmp_path / "assumed", class_num=4,
                                validate=False)
    assert result.notes and result.notes[0].startswith("Assumed")
    config = tmp_path / "config.yaml"
    config.write_text("Arch:\n  name: PPLCNet_x0_25\n  class_num: 4\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ppinfer.ExportNote)  # from a config nothing is assumed
        assert ppinfer.export(None, path, tmp_path / "known", config=config,
                              validate=False).notes == []
