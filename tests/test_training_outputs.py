"""Training outputs as ``export -p`` takes them: PaddleClas's prefix (``output/best_model``), a
folder holding ``best_model.pdparams``, ``.pdema``, a distillation state dict's parts, and
mismatches named by the file's own keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.models import get_model

from .paddleclas_reference import legendary_model

MODEL, CLASSES = "PPLCNet_x0_25", 4


def invoke(args: list[str]):
    return CliRunner().invoke(cli, ["export", "-m", MODEL, "--class-num", str(CLASSES), *args])


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    """A PP-LCNet state dict (PaddleClas's keys, which ppinfer's model shares), random."""
    import paddle

    paddle.seed(3)
    net = get_model(MODEL).build(class_num=CLASSES)
    return {key: value.numpy() for key, value in net.state_dict().items()}


def save(state: dict[str, np.ndarray], path: Path) -> Path:
    import paddle

    path.parent.mkdir(parents=True, exist_ok=True)
    paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, str(path))
    return path


def recorded_checkpoint(out: Path) -> str:
    return yaml.safe_load((out / "inference.yml").read_text())["ppinfer"]["checkpoint"]


def paddleclas_output(folder: Path, state) -> Path:
    """PaddleClas 2.6's output/<Arch>/: best_model.pdparams beside .pdopt and .pdstates, and
    best_model/model.pdparams."""
    weights = save(state, folder / "best_model.pdparams")
    save(state, folder / "best_model" / "model.pdparams")
    for other in (".pdopt", ".pdstates"):
        (folder / f"best_model{other}").write_bytes(b"\x80\x04N.")  # a pickle, not weights
    return weights


def test_prefix_and_folder_resolve_to_best_model_pdparams(state, tmp_path):
    folder = tmp_path / "output" / MODEL
    weights = paddleclas_output(folder, state)
    for given in (folder / "best_model", folder):  # the prefix configs write, and the folder
        out = tmp_path / f"out-{given.name}"
        result = invoke(["-p", str(given), "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert recorded_checkpoint(out) == str(weights)
    result = invoke(["-p", str(folder / "best_model.pdopt"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"best_model.pdopt holds optimizer state, not the model's weights: pass {weights}." \
        in result.output


def test_pdema_reads_as_the_state_dict_it_is(state, tmp_path):
    ema = save(state, tmp_path / "best_model.pdema")
    result = invoke(["-p", str(ema), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert recorded_checkpoint(tmp_path / "out") == str(ema)


def test_folder_of_several_pdparams_without_best_model_names_them(state, tmp_path):
    for name in ("epoch_1.pdparams", "epoch_2.pdparams"):
        save(state, tmp_path / "ckpts" / name)
    result = invoke(["-p", str(tmp_path / "ckpts"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "holds 2 .pdparams files (epoch_1.pdparams, epoch_2.pdparams)" in result.output


def test_distillation_state_dict_exports_its_student_and_names_the_parts(state, tmp_path):
    teacher = {k: np.ones_like(v) for k, v in state.items()}  # another model, of the same shape
    both = {**{f"Teacher.{k}": v for k, v in teacher.items()},
            **{f"Student.{k}": v for k, v in state.items()}}
    weights = save(both, tmp_path / "best_model.pdparams")
    result = invoke(["-p", str(weights), "-o", str(tmp_path / "student")])
    assert result.exit_code == 0, result.output
    assert "holds a distillation model (Student, Teacher): exporting its Student " \
           "(--checkpoint-part NAME picks another)" in result.output
    card = yaml.safe_load((tmp_path / "student" / "inference.yml").read_text())
    assert card["ppinfer"]["checkpoint_part"] == "Student"
    result = invoke(["-p", str(weights), "-o", str(tmp_path / "teacher"),
                     "--checkpoint-part", "Teacher"])
    assert result.exit_code == 0, result.output
    result = invoke(["-p", str(weights), "-o", str(tmp_path / "x"), "--checkpoint-part", "TA"])
    assert result.exit_code == 2
    assert "--checkpoint-part TA is not in" in result.output
    assert "which holds Student, Teacher." in result.output


def test_the_part_exported_is_the_part_asked_for(state, tmp_path):
    """Student and Teacher differ: each export scores as its part's weights do."""
    teacher = {k: (v * 0.5 if k.startswith("fc.") else v) for k, v in state.items()}
    weights = save({**{f"Teacher.{k}": v for k, v in teacher.items()},
                    **{f"Student.{k}": v for k, v in state.items()}},
                   tmp_path / "best_model.pdparams")
    alone = {"Student": save(state, tmp_path / "student.pdparams"),
             "Teacher": save(teacher, tmp_path / "teacher.pdparams")}
    for part, single in alone.items():
        runs = []
        for name, args in (("part", ["-p", str(weights), "--checkpoint-part", part]),
                           ("alone", ["-p", str(single)])):
            out = tmp_path / f"{part}-{name}"
            assert invoke([*args, "-o", str(out)]).exit_code == 0
            result = CliRunner().invoke(cli, ["predict", "--model", str(out), "--json"])
            assert result.exit_code == 0, result.output
            runs.append([line for line in result.output.splitlines() if line.startswith("{")])
        assert runs[0] == runs[1], part


def test_shape_mismatch_names_the_key_in_the_file(paddleclas_root, tmp_path):
    """A fine-tuned ResNet50_vd of 102 classes exported without --class-num: the message names
    PaddleClas's fc.weight, which is in the file, not ppinfer's variable fc_0.w_0."""
    import paddle

    with paddle.LazyGuard():
        net = legendary_model(paddleclas_root, "resnet", "ResNet50_vd", class_num=102)
    shapes = {key: list(value.shape) for key, value in net.state_dict().items()}
    weights = tmp_path / "best_model.pdparams"
    paddle.save({k: np.zeros(s, np.float32) for k, s in shapes.items()}, str(weights))
    result = CliRunner().invoke(cli, ["export", "-m", "ResNet50_vd", "-p", str(weights),
                                      "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"Error: fc.weight is [2048, 102] in {weights}, ResNet50_vd makes [2048, 1000]: " \
           "pass --class-num 102." in result.output
    assert "fc.weight" in shapes


def test_checkpoint_built_with_other_arguments_is_sent_to_its_config(tmp_path):
    """Issue 20: a use_last_conv: false checkpoint (PULC image orientation) was "every parameter
    has a shape PPLCNet_x1_0 makes, but 2 are missing"; its fc has another shape, so the
    message now says to bring the training config."""
    import paddle

    paddle.seed(0)
    net = get_model(MODEL).build(class_num=CLASSES, use_last_conv=False)
    weights = tmp_path / "best_model.pdparams"
    paddle.save(net.state_dict(), str(weights))
    result = invoke(["-p", str(weights), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "lacks 1 of 146 variables (last_conv.weight), and 1 of another shape (fc.weight is " \
           "[128, 4], PPLCNet_x0_25 makes [1280, 4])" in result.output
    assert result.output.rstrip().endswith(
        "it was trained with other architecture arguments than PaddleClas's defaults (such as "
        "use_last_conv or class_expand): pass its training config with -c CONFIG.yaml, or check "
        "--model-name.")
    result = invoke(["-p", str(weights), "-o", str(tmp_path / "out"),
                     "--arch-arg", "use_last_conv=false"])
    assert result.exit_code == 0, result.output


def test_part_asked_with_a_single_model_config_and_a_config_part_saved_alone(state, tmp_path):
    """--checkpoint-part picks from the checkpoint also when the config trains one model; a
    distillation config's part saved alone (PaddleClas's best_model_student.pdparams) loads as
    it is."""
    from . import paddleclas_configs as configs

    single = tmp_path / "single.yaml"
    single.write_text(configs.PULC_IMAGE_ORIENTATION.replace("PPLCNet_x1_0", MODEL).replace(
        "use_last_conv: False", "use_last_conv: True"), encoding="utf-8")
    teacher = {k: v * 0.5 if k.startswith("fc.") else v for k, v in state.items()}
    both = save({**{f"Teacher.{k}": v for k, v in teacher.items()},
                 **{f"Student.{k}": v for k, v in state.items()}}, tmp_path / "both.pdparams")
    out = tmp_path / "teacher"
    result = CliRunner().invoke(cli, ["export", "-c", str(single), "-p", str(both), "-o", str(out),
                                      "--checkpoint-part", "Teacher"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((out / "inference.yml").read_text())["ppinfer"]["checkpoint_part"] \
        == "Teacher"
    distill = tmp_path / "distill.yaml"
    distill.write_text(configs.PPLCNET_SSLD.replace("PPLCNet_x1_0", MODEL).replace(
        "&class_num 1000", f"&class_num {CLASSES}"), encoding="utf-8")
    student = save(state, tmp_path / "best_model_student.pdparams")
    result = CliRunner().invoke(cli, ["export", "-c", str(distill), "-p", str(student),
                                      "-o", str(tmp_path / "student")])
    assert result.exit_code == 0, result.output
