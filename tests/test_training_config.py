"""Training configs (``ppinfer export -c``): what is read from them, and what is refused by name.

The arguments a config's ``Arch`` passes are checked against the family's PaddleClas constructor
(models/arguments.py): an argument ppinfer does not know, one the name fixes, or a value ppinfer
would not build is one sentence, exit 2, naming the file and the key -- never ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.errors import ConfigError
from ppinfer.export_plan import plan_export
from ppinfer.models.training_config import read_training_config

from . import paddleclas_configs as configs


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def export_error(args: list[str]) -> str:
    result = CliRunner().invoke(cli, ["export", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def test_config_names_the_architecture_arguments_input_and_preprocessing(tmp_path):
    plan = plan_export(None, config=write(tmp_path, configs.PULC_TEXTLINE_ORIENTATION))
    assert plan.spec.name == "PPLCNet_x1_0" and plan.class_num == 2
    assert plan.arguments.values["stride_list"] == [2, [2, 1], [2, 1], [2, 1], [2, 1]]
    assert plan.arguments.given == {"stride_list", "pretrained", "use_ssld"}
    assert plan.input_shape == (3, 80, 160)
    assert plan.preprocess.resize_size == (160, 80) and plan.preprocess.crop_size == (160, 80)
    assert plan.topk == 1 and plan.notes == []  # nothing assumed, nothing to say


def test_unknown_arch_argument_is_refused_by_name(tmp_path):
    config = write(tmp_path, configs.PULC_IMAGE_ORIENTATION.replace(
        "use_last_conv: False", "use_last_conv: False\n  use_fancy_head: True"))
    message = export_error(["-c", str(config), "-p", "x", "-o", str(tmp_path / "o")])
    assert f"{config}'s Arch sets use_fancy_head" in message
    assert "does not take (it takes act, class_expand, dropout_prob," in message


def test_argument_the_name_fixes_is_refused(tmp_path):
    config = write(tmp_path, configs.PULC_IMAGE_ORIENTATION.replace(
        "use_last_conv: False", "scale: 0.5"))
    message = export_error(["-c", str(config), "-p", "x", "-o", str(tmp_path / "o")])
    assert "sets scale, which the name PPLCNet_x1_0 fixes at 1.0" in message


def test_value_ppinfer_does_not_build_is_refused(tmp_path):
    text = configs.PULC_IMAGE_ORIENTATION.replace(
        "name: PPLCNet_x1_0", "name: ResNet50_vd").replace("use_last_conv: False",
                                                           "max_pool: False")
    message = export_error(["-c", str(write(tmp_path, text)), "-p", "x", "-o", "o"])
    assert "sets max_pool: false, and ppinfer builds ResNet50_vd only with PaddleClas's " \
           "default max_pool: true" in message


def test_wrong_value_is_refused_with_what_it_must_be(tmp_path):
    config = write(tmp_path, configs.PULC_TEXTLINE_ORIENTATION.replace(
        "[2, [2, 1], [2, 1], [2, 1], [2, 1]]", "[2, [2, 1], [2, 1]]"))
    message = export_error(["-c", str(config), "-p", "x", "-o", "o"])
    assert "stride_list: [2, [2, 1], [2, 1]], and PPLCNet_x1_0's stride_list must be a list " \
           "of 5 strides" in message


def test_minus_m_contradicting_the_config_is_refused(tmp_path):
    config = write(tmp_path, configs.PULC_TEXTLINE_ORIENTATION)
    message = export_error(["-c", str(config), "-m", "PPLCNet_x0_25", "-p", "x", "-o", "o"])
    assert f"-m PPLCNet_x0_25 contradicts {config}'s Arch, which trained PPLCNet_x1_0" in message
    assert plan_export("PP-LCNet_x1_0", config=config).spec.name == "PPLCNet_x1_0"  # an alias


def test_command_line_overrides_the_config(tmp_path):
    plan = plan_export(None, config=write(tmp_path, configs.PULC_IMAGE_ORIENTATION),
                       class_num=7, arch_args={"use_last_conv": True, "dropout_prob": 0.0},
                       input_shape=(3, 192, 192))
    assert plan.class_num == 7 and plan.input_shape == (3, 192, 192)
    assert plan.arguments.forward["use_last_conv"] is True
    assert plan.arguments.forward["dropout_prob"] == 0.0
    assert plan.preprocess.crop_size == (192, 192) and plan.preprocess.resize_short == 219


def test_arch_arg_values_are_yaml(tmp_path):
    result = CliRunner().invoke(cli, ["export", "-m", "PPLCNet_x1_0", "-p", "missing.pdparams",
                                      "-o", str(tmp_path / "o"), "--arch-arg", "stride_list=[2]"])
    assert result.exit_code == 2
    assert "--arch-arg sets stride_list: [2]" in result.output
    result = CliRunner().invoke(cli, ["export", "-m", "PPLCNet_x1_0", "-p", "x", "-o", "o",
                                      "--arch-arg", "dropout_prob"])
    assert result.exit_code == 2 and "is not NAME=VALUE" in result.output


def test_image_shape_the_infer_transforms_do_not_make_is_refused(tmp_path):
    config = write(tmp_path, configs.PULC_TEXTLINE_ORIENTATION.replace(
        "image_shape: [3, 80, 160]", "image_shape: [3, 48, 192]"))
    with pytest.raises(ConfigError, match=r"Global.image_shape is \[3, 48, 192\], and its "
                                          r"Infer.transforms make 160x80 images"):
        plan_export(None, config=config)
    assert plan_export(None, config=config, input_shape=(3, 48, 192)).input_shape == (3, 48, 192)


def test_anchors_of_scalars_are_read_and_aliases_of_mappings_refused(tmp_path):
    config = read_training_config(write(tmp_path, configs.MV3_DISTILLATION))
    assert config.model_name == "MobileNetV3_small_x1_0" and config.class_num == 1000
    assert config.arguments == {"pretrained": False, "dropout_prob": None}
    bomb = configs.MV3_DISTILLATION.replace("Arch:", "Arch: &arch").replace(
        "infer_model_name", "again: *arch\n  infer_model_name")
    with pytest.raises(ConfigError, match="uses an alias, not to a scalar"):
        read_training_config(write(tmp_path, bomb, "bomb.yaml"))


def test_distillation_config_picks_its_infer_model_name_or_the_asked_part(tmp_path):
    config = write(tmp_path, configs.MV3_DISTILLATION)
    teacher = read_training_config(config, part="Teacher")
    assert (teacher.model_name, teacher.part, teacher.parts) == (
        "MobileNetV3_large_x1_0", "Teacher", ("Teacher", "Student"))
    with pytest.raises(ConfigError, match=r"--checkpoint-part Assistant is not one of .* "
                                          r"\(Teacher, Student\)"):
        read_training_config(config, part="Assistant")
    unnamed = write(tmp_path, configs.MV3_DISTILLATION.replace('infer_model_name: "Student"', ""),
                    "unnamed.yaml")
    read = read_training_config(unnamed)
    assert read.part == "Student" and "sets no infer_model_name: exporting its Student" \
        in read.notes[0]


def test_infer_add_softmax_false_is_refused(tmp_path):
    config = write(tmp_path, configs.PULC_IMAGE_ORIENTATION.replace(
        "use_last_conv: False", "use_last_conv: False\n  infer_add_softmax: False"))
    with pytest.raises(ConfigError, match="infer_add_softmax: false"):
        read_training_config(config)


def test_unknown_architecture_in_the_config_says_where_and_what_runs_anyway(tmp_path):
    config = write(tmp_path, configs.PULC_IMAGE_ORIENTATION.replace(
        "name: PPLCNet_x1_0", "name: SwinTransformer_tiny_patch4_window7_224"))
    message = export_error(["-c", str(config), "-p", "x", "-o", "o"])
    assert f"{config}'s Arch names 'SwinTransformer_tiny_patch4_window7_224'" in message
    assert "Did you mean" not in message and "ppinfer predict --model DIR" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_config_that_is_not_a_regular_file_or_too_large_is_refused_before_reading(tmp_path):
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is a FIFO"):
        read_training_config(fifo)  # would block forever if opened
    large = tmp_path / "large.yaml"
    with open(large, "wb") as fh:
        fh.truncate(64 << 20)  # sparse: costs nothing unless read
    with pytest.raises(ConfigError, match="over the limit"):
        read_training_config(large)


def test_folder_without_config_is_refused(tmp_path):
    message = export_error(["-c", str(tmp_path), "-p", "x", "-o", "o"])
    assert f"{tmp_path} is a folder without a config.yaml" in message


def test_python_api_builds_from_the_config_and_warns_what_it_assumes_without(tmp_path):
    import warnings

    import paddle

    import ppinfer
    from ppinfer.models import get_model

    text = configs.PULC_IMAGE_ORIENTATION.replace("PPLCNet_x1_0", "PPLCNet_x0_25")
    spec = get_model("PPLCNet_x0_25")
    paddle.seed(0)
    weights = tmp_path / "best_model.pdparams"
    paddle.save(spec.build(class_num=4, use_last_conv=False).state_dict(), str(weights))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ppinfer.ExportNote)  # from the config nothing is assumed
        result = ppinfer.export(None, weights, tmp_path / "out", config=write(tmp_path, text))
    assert result.arguments["use_last_conv"] is False and result.class_num == 4
    paddle.save(spec.build(class_num=4).state_dict(), str(weights))
    with pytest.warns(ppinfer.ExportNote, match="assumed PaddleClas's defaults for "
                                                "PPLCNet_x0_25's dropout_prob: 0.2"):
        result = ppinfer.export("PPLCNet_x0_25", weights, tmp_path / "out2", class_num=4)
    assert result.notes and result.config is None


def test_non_square_shape_without_config_fits_its_crop_and_says_what_it_assumed():
    """Issue 20: --image-shape 3,80,160 was "crop 160x80 is larger than the resize_short 91"."""
    plan = plan_export("PPLCNet_x1_0", input_shape=(3, 80, 160))
    assert plan.preprocess.crop_size == (160, 80)
    assert plan.preprocess.resize_short == round(160 * 256 / 224)  # the crop fits
    preprocessing, assumed = plan.notes
    assert "pass the training config (-c CONFIG.yaml) to take its Infer.transforms" in preprocessing
    assert "stride_list: [2, 2, 2, 2, 2]" in assumed


def test_multilabel_config_is_refused_and_another_post_process_is_said(tmp_path):
    """PaddleClas exports a multi-label model with a sigmoid: exporting it with softmax would be
    wrong, so it is refused. PULC's ThreshOutput shows the same scores another way: said."""
    multilabel = write(tmp_path, configs.PULC_IMAGE_ORIENTATION.replace(
        "image_shape:", "use_multilabel: True\n  image_shape:"), "ml.yaml")
    with pytest.raises(ConfigError, match=r"multi-label model \(Global.use_multilabel\)"):
        read_training_config(multilabel)
    thresh = write(tmp_path, configs.PULC_IMAGE_ORIENTATION.replace(
        "name: Topk", "name: ThreshOutput\n    threshold: 0.9"), "thresh.yaml")
    assert plan_export(None, config=thresh).notes == [
        f"{thresh}'s Infer.PostProcess is ThreshOutput, which ppinfer does not apply: predict "
        "shows the top-k of the same scores."]
