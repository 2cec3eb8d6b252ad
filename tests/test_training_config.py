"""Reading a training config (``export -c``) and resolving an export's arguments: what the
config says is taken, what ppinfer cannot build is refused by name in one sentence, what the
checkpoint cannot show is noted when assumed. No model is built here: the forward's agreement
with PaddleClas is tests/test_paddleclas_reference_config.py's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ppinfer.api.options import parse_arch_args
from ppinfer.errors import ConfigError, UnknownNameError
from ppinfer.modelfiles.export_plan import plan_export
from ppinfer.modelfiles.training_config import read_training_config
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from . import paddleclas_configs as configs


def config_file(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def arch_config(arch: str) -> str:
    """A PaddleClas config whose Arch section is ``arch`` (indented YAML lines)."""
    return "Global:\n  image_shape: [3, 224, 224]\nArch:\n" + arch


def refused(tmp_path: Path, text: str, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        plan_export(kwargs.pop("model_name", None), config=config_file(tmp_path, text), **kwargs)
    message = str(info.value)
    assert "\n" not in message  # one sentence
    return message


def test_the_textline_config_gives_architecture_arguments_shape_and_preprocessing(tmp_path):
    plan = plan_export(None, config=config_file(tmp_path, configs.PULC_TEXTLINE_ORIENTATION))
    assert plan.spec.name == "PPLCNet_x1_0" and plan.class_num == 2
    assert plan.arguments.built["stride_list"] == [2, [2, 1], [2, 1], [2, 1], [2, 1]]
    assert plan.input_shape == (3, 80, 160)
    assert plan.preprocess == PreprocessConfig(resize_size=(160, 80), crop_size=(160, 80))
    assert plan.topk == 1
    # dropout_prob and act are PaddleClas's defaults there: the config's training used them.
    assert not any(note.startswith("Assumed") for note in plan.notes)


def test_the_config_names_the_architecture_and_a_different_model_name_is_refused(tmp_path):
    message = refused(tmp_path, configs.PULC_TEXTLINE_ORIENTATION, model_name="PPLCNet_x0_25")
    assert "-m PPLCNet_x0_25 is not the architecture" in message and "PPLCNet_x1_0" in message
    same = plan_export("PP-LCNet_x1_0",
                       config=config_file(tmp_path, configs.PULC_TEXTLINE_ORIENTATION))
    assert same.spec.name == "PPLCNet_x1_0"  # PaddleX's name for the same architecture


def test_explicit_flags_override_the_config(tmp_path):
    plan = plan_export(None, config=config_file(tmp_path, configs.PULC_TEXTLINE_ORIENTATION),
                       class_num=3, input_shape=(3, 48, 192),
                       arch_args={"dropout_prob": 0.0})
    assert plan.class_num == 3 and plan.input_shape == (3, 48, 192)
    assert plan.preprocess.crop_size == (192, 48)
    assert plan.arguments.values["dropout_prob"] == 0.0
    assert plan.arguments.given["dropout_prob"] == "--arch-arg dropout_prob"


@pytest.mark.parametrize(("arch", "words"), [
    ("  name: PPLCNet_x1_0\n  use_sse: True\n",
     ["Arch.use_sse", "use_sse", "does not know", "dropout_prob", "stride_list"]),
    ("  name: PPLCNet_x1_0\n  dropout_prob: 1.5\n",
     ["Arch.dropout_prob", "1.5", "must be a number from 0 to 1"]),
    ("  name: PPLCNet_x1_0\n  dropout_prob: null\n", ["must be a number from 0 to 1"]),
    ("  name: PPLCNet_x1_0\n  stride_list: [2, 2, 2]\n", ["a list of 5 strides"]),
    ("  name: PPLCNet_x1_0\n  act: gelu\n", ["one of hardswish, relu, relu6"]),
    ("  name: PPLCNet_x1_0\n  scale: 0.5\n", ["scale", "already sets to 1.0"]),
    ("  name: ResNet50_vd\n  stride_list: [2, 2, 2, 2, 1]\n",
     ["ResNet50_vd only with stride_list [2, 2, 2, 2, 2]", "refused"]),
    ("  name: ResNet50_vd\n  stem_act: hardswish\n", ["stem_act to hardswish"]),
    ("  name: MobileNetV3_large_x1_0\n  class_squeeze: 1280\n", ["class_squeeze 960"]),
    ("  name: PPLCNet_x1_0\n  use_ml_decoder: True\n", ["use_ml_decoder", "multi-label"]),
    ("  name: PPLCNet_x1_0\n  infer_add_softmax: False\n", ["infer_add_softmax"]),
    ("  name: PPHGNetV2_B0\n  use_lab: False\n", ["use_lab", "already sets"]),
    ("  name: EfficientNet_lite0\n  use_se: True\n", ["use_se", "already sets to false"]),
    ("  name: EfficientNet_lite0\n  padding_type: SAME\n", ["padding_type", "does not know"]),
])
def test_what_ppinfer_cannot_build_is_refused_by_name(tmp_path, arch, words):
    message = refused(tmp_path, arch_config(arch))
    for word in words:
        assert word in message, message


def test_arguments_that_change_nothing_exported_are_taken_and_recorded(tmp_path):
    arch = ("  name: PPLCNet_x1_0\n  pretrained: True\n  use_ssld: True\n"
            "  lr_mult_list: [0.1, 0.2, 0.3, 0.4, 0.5, 1.0]\n  return_stages: True\n"
            "  use_sync_bn: True\n")
    plan = plan_export(None, config=config_file(tmp_path, arch_config(arch)))
    assert plan.arguments.values["lr_mult_list"] == [0.1, 0.2, 0.3, 0.4, 0.5, 1.0]
    assert "lr_mult_list" not in plan.arguments.built  # the forward never sees it
    lite = plan_export(None, config=config_file(tmp_path, arch_config(
        "  name: EfficientNet_lite0\n  pretrained: False\n  use_ssld: False\n")))
    assert lite.arguments.built == {} and lite.notes == []


def test_without_a_config_the_unseen_defaults_are_noted_and_recorded(tmp_path):
    plan = plan_export("MobileNetV3_small_x1_0")
    note = next(note for note in plan.notes if note.startswith("Assumed"))
    assert "dropout_prob 0.2" in note and "-c CONFIG.yaml" in note
    assert "--arch-arg dropout_prob=VALUE" in note
    record = plan.provenance()
    assert record["arguments"]["dropout_prob"] == 0.2
    # (the small factories set class_squeeze themselves: not an argument of theirs)
    assert set(record["assumed"]) == {"dropout_prob", "class_expand", "inplanes"}
    with_config = plan_export(None, config=config_file(tmp_path, configs.MOBILENETV3_DML))
    assert with_config.provenance()["assumed"] == []  # the config's training had them


def test_a_distillation_config_exports_the_part_it_names(tmp_path):
    path = config_file(tmp_path, configs.PPLCNET_SSLD)
    trained = read_training_config(path)
    assert (trained.model_name, trained.part, trained.parts) == ("PPLCNet_x1_0", "Student",
                                                                 ("Teacher", "Student"))
    assert trained.arguments == {"pretrained": False, "dropout_prob": 0.0}
    assert trained.class_num == 1000  # through the &class_num anchor
    teacher = plan_export(None, config=path, part="Teacher")
    assert teacher.spec.name == "ResNet50_vd" and teacher.part == "Teacher"
    assert "--checkpoint-part Nobody is not one of" in refused(tmp_path, configs.PPLCNET_SSLD,
                                                               part="Nobody")


def test_a_distillation_config_without_infer_model_name_leaves_the_part_to_the_checkpoint(
        tmp_path):
    text = configs.MOBILENETV3_DML.replace('  infer_model_name: "Student"\n', "")
    plan = plan_export(None, config=config_file(tmp_path, text))
    assert plan.spec.name == "MobileNetV3_small_x1_0" and plan.part is None
    assert plan.arguments.values["dropout_prob"] is None


def test_global_class_num_is_taken_where_arch_has_none(tmp_path):
    text = "Global:\n  class_num: 7\nArch:\n  name: PPLCNet_x0_25\n"
    assert plan_export(None, config=config_file(tmp_path, text)).class_num == 7


def test_a_paddlex_output_folder_is_read_as_its_config_yaml(tmp_path):
    output = tmp_path / "output"
    (output / "best_model").mkdir(parents=True)
    config_file(output, configs.PADDLEX_TEXTLINE_ORI)
    for given in (output, output / "best_model"):
        plan = plan_export(None, config=given)
        assert plan.card_name == "PP-LCNet_x1_0_textline_ori" and plan.class_num == 2


@pytest.mark.parametrize(("text", "words"), [
    ("Arch: [1, 2]\n", ["unreadable Arch section"]),
    ("Global: {}\n", ["no Arch section"]),
    ("Arch:\n  class_num: 3\n", ["has no name"]),
    ("Arch: &a\n  name: PPLCNet_x1_0\nOther: *a\n", ["alias to a list or mapping"]),
    ("Arch: {name: PPLCNet_x1_0\n", ["not valid YAML"]),
    ("Global:\n  image_shape: [3, 224]\nArch:\n  name: PPLCNet_x1_0\n", ["[C, H, W]"]),
    ("Arch:\n  name: PPLCNet_x1_0\n  class_num: -1\n", ["class count"]),
    ("Arch:\n  name: PPLCNet_x1_0\nInfer:\n  transforms:\n    - RandCropImage: {size: 224}\n",
     ["Infer.transforms", "RandCropImage"]),
])
def test_a_broken_config_is_one_sentence_naming_the_file(tmp_path, text, words):
    message = refused(tmp_path, text)
    assert "config.yaml" in message
    for word in words:
        assert word in message, message


def test_a_config_that_is_not_a_regular_file_or_too_large_is_refused_unread(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="FIFO"):
        plan_export(None, config=fifo)
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(2 << 20)  # sparse: costs nothing unless read
    with pytest.raises(ConfigError, match="over the limit"):
        plan_export(None, config=big)
    with pytest.raises(ConfigError, match="without config.yaml"):
        plan_export(None, config=tmp_path)


def test_an_unknown_architecture_in_a_config_says_exported_models_run_anyway(tmp_path):
    with pytest.raises(UnknownNameError) as info:
        plan_export(None, config=config_file(tmp_path, arch_config("  name: SE_ResNet50_vd\n")))
    assert "Did you mean" not in str(info.value)
    assert "ppinfer predict --model DIR" in str(info.value)


def test_arch_args_read_their_values_as_yaml():
    assert parse_arch_args(["dropout_prob=0.0", "use_last_conv=false", "act=relu",
                            "stride_list=[2, [2, 1], 2, 2, 2]", "dropout_prob2=null"]) == {
        "dropout_prob": 0.0, "use_last_conv": False, "act": "relu",
        "stride_list": [2, [2, 1], 2, 2, 2], "dropout_prob2": None}
    for bad in ("dropout_prob", "=1", "x=[1", "x={a: 1}", "x=*a"):
        with pytest.raises(ConfigError, match="--arch-arg"):
            parse_arch_args([bad])


def test_a_multilabel_config_is_refused_and_another_post_process_is_said(tmp_path):
    """PaddleClas exports a multi-label model with a sigmoid: ppinfer's softmax export would be
    wrong, so it is refused. PULC's ThreshOutput shows the same scores another way: said."""
    multilabel = configs.PULC_IMAGE_ORIENTATION.replace(
        "  image_shape:", "  use_multilabel: True\n  image_shape:")
    assert "multi-label model (Global.use_multilabel)" in refused(tmp_path, multilabel)
    thresh = configs.PULC_IMAGE_ORIENTATION.replace(
        "    name: Topk\n    topk: 1\n", "    name: ThreshOutput\n    threshold: 0.9\n")
    plan = plan_export(None, config=config_file(tmp_path, thresh, "thresh.yaml"))
    assert any("Infer.PostProcess is ThreshOutput, which ppinfer does not apply" in note
               for note in plan.notes)
    topk = plan_export(None, config=config_file(tmp_path, configs.PULC_IMAGE_ORIENTATION))
    assert not any("PostProcess" in note for note in topk.notes)
