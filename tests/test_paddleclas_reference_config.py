"""Issue 20's table, row by row: a model PaddleClas built from a training config (its own code
from the paddleclas wheel, with the config's Arch arguments; random weights, batch norm
calibrated on real photos) exports with ``ppinfer export -c CONFIG`` and predicts PaddleClas's
top-k with scores within 1e-5 of PaddleClas's forward + softmax. The configs are PaddleClas's and
PaddleX's own (tests/paddleclas_configs.py). Without the config, the export says in a note what
it assumed that the checkpoint cannot show."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ppinfer.modelfiles.modelcard import read_card
from ppinfer.pipeline.preprocess_config import PreprocessConfig

from . import paddleclas_configs as configs
from .paddleclas_reference import (
    SCORE_ATOL,
    Reference,
    build_reference,
    calibration_images,
    photo_batch,
    predicted,
    run_cli,
)

TEXTLINE_STRIDES = [2, [2, 1], [2, 1], [2, 1], [2, 1]]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def preprocess_of(config_text: str) -> PreprocessConfig:
    return PreprocessConfig.from_paddleclas_ops(configs.infer_transforms(config_text))


def reference(root, photos, out: Path, config_text: str, module: str, name: str,
              class_num: int, arguments: dict, **kwargs) -> Reference:
    """PaddleClas's ``name(**arguments)`` as the config trains it, its photos preprocessed
    as the config's Infer.transforms say."""
    pre = preprocess_of(config_text)
    # A random 1000-class head taught to tell three photos apart is near-uniform on one photo
    # while saturated on another, at any temperature: there, a top-1 five times the uniform
    # score is enough, and the comparison (assert_scores_agree) needs no ranked top-5.
    spread = dict(low=0.2, high=0.9) if class_num < 100 else dict(low=0.005, high=0.999,
                                                                   ranked=1)
    return build_reference(root, module, name, sorted(photos.values()), out,
                           class_num=class_num, arguments=arguments, preprocess=pre,
                           calibration=photo_batch(name, calibration_images(), pre),
                           **spread, **kwargs)


def export_cli(args: list[str], out: Path, exit_code: int = 0) -> str:
    """``ppinfer export ... -o out``: what it printed, stderr's notes included."""
    return run_cli(["export", *args, "-o", str(out), "--force"], exit_code)


def predictions(ref: Reference, out: Path) -> list[dict]:
    return predicted(["-i", str(ref.photos[0].parent), "--model", str(out)])


def assert_scores_agree(lines: list[dict], ref: Reference) -> None:
    """One line per photo, in order; each has PaddleClas's top-1, each class it lists scores
    within SCORE_ATOL of PaddleClas's score for that class, and no class it leaves out scores
    higher in PaddleClas's (so the listed ones are a top-k, whatever order near-ties take)."""
    assert [line["file_name"] for line in lines] == [str(path) for path in ref.photos]
    for line, scores in zip(lines, ref.scores):
        ids = np.asarray(line["class_ids"])
        assert ids[0] == int(scores.argmax()), line["file_name"]
        np.testing.assert_allclose(line["scores"], scores[ids], rtol=0, atol=SCORE_ATOL)
        left_out = np.delete(scores, ids)
        assert left_out.size == 0 or left_out.max() <= min(line["scores"]) + SCORE_ATOL


def max_score_diff(lines: list[dict], ref: Reference) -> float:
    """Largest difference between the scores predicted and PaddleClas's, class by class."""
    return max(float(np.max(np.abs(np.asarray(line["scores"])
                                   - scores[np.asarray(line["class_ids"])])))
               for line, scores in zip(lines, ref.scores))


# -- PULC text-line orientation: stride_list [2, [2, 1], ...], input 3x80x160 ----------------

@pytest.fixture(scope="module")
def textline(paddleclas_root, photos, tmp_path_factory) -> tuple[Reference, Path]:
    folder = tmp_path_factory.mktemp("textline")
    config = write(folder, "PPLCNet_x1_0.yaml", configs.PULC_TEXTLINE_ORIENTATION)
    ref = reference(paddleclas_root, photos, folder / "best_model.pdparams",
                    configs.PULC_TEXTLINE_ORIENTATION, "pp_lcnet", "PPLCNet_x1_0", 2,
                    {"stride_list": TEXTLINE_STRIDES})
    return ref, config


def test_textline_orientation_exports_from_its_config_as_paddleclas_scores_it(textline,
                                                                              tmp_path):
    ref, config = textline
    out = tmp_path / "textline"
    export_cli(["-c", str(config), "-p", str(ref.pdparams)], out)
    card = read_card(out / "inference.yml")
    assert card.preprocess == preprocess_of(configs.PULC_TEXTLINE_ORIENTATION)
    assert card.input_shape == (3, 80, 160)
    assert card.provenance["arguments"]["stride_list"] == TEXTLINE_STRIDES
    assert "stride_list" not in card.provenance["assumed"]
    assert_scores_agree(predictions(ref, out), ref)


def test_executor_persistable_rebuilds_a_config_export_with_its_recorded_arguments(textline,
                                                                                    tmp_path):
    """predict --engine executor-persistable on the export: the card's checkpoint, built with
    the card's arguments (the strides), scores as PaddleClas does."""
    ref, config = textline
    out = tmp_path / "textline"
    export_cli(["-c", str(config), "-p", str(ref.pdparams)], out)
    assert_scores_agree(predicted(["-i", str(ref.photos[0].parent), "--model", str(out),
                                   "--engine", "executor-persistable"]), ref)


def test_textline_checkpoint_without_its_config_says_the_strides_it_assumed(textline, tmp_path):
    ref, _ = textline
    out = tmp_path / "assumed"
    printed = export_cli(["-m", "PPLCNet_x1_0", "-p", str(ref.pdparams), "--class-num", "2",
                          "--image-shape", "3,80,160"], out)
    assert "Note: Assumed PaddleClas's defaults" in printed
    assert "stride_list [2, 2, 2, 2, 2]" in printed and "-c CONFIG.yaml" in printed
    card = read_card(out / "inference.yml")
    assert {"dropout_prob", "stride_list", "act"} <= set(card.provenance["assumed"])
    # What the note is for: these scores are not PaddleClas's.
    assert max_score_diff(predictions(ref, out), ref) > 1e-4


def test_textline_strides_given_as_arch_args_export_as_the_config_does(textline, tmp_path):
    ref, _ = textline
    out = tmp_path / "arch-args"
    printed = export_cli(["-m", "PPLCNet_x1_0", "-p", str(ref.pdparams), "--class-num", "2",
                          "--image-shape", "3,80,160", "--arch-arg",
                          "stride_list=[2, [2, 1], [2, 1], [2, 1], [2, 1]]",
                          "--arch-arg", "dropout_prob=0.2", "--arch-arg", "act=hardswish"],
                         out)
    assert "Note:" not in printed
    assert_scores_agree(predictions(ref, out), ref)


def test_paddlex_textline_output_folder_exports_with_its_config_and_paddlex_name(
        textline, tmp_path):
    """PaddleX's training output: config.yaml beside best_model/best_model.pdparams."""
    ref, _ = textline
    output = tmp_path / "output"
    write(output, "config.yaml", configs.PADDLEX_TEXTLINE_ORI)
    (output / "best_model").mkdir()
    (output / "best_model" / "best_model.pdparams").write_bytes(ref.pdparams.read_bytes())
    out = tmp_path / "exported"
    export_cli(["-c", str(output)], out)
    written = yaml.safe_load((out / "inference.yml").read_text(encoding="utf-8"))
    assert written["Global"]["model_name"] == "PP-LCNet_x1_0_textline_ori"  # PaddleX's name
    assert_scores_agree(predictions(ref, out), ref)


# -- PULC / PaddleX image and document orientation: use_last_conv false ----------------------

@pytest.fixture(scope="module")
def orientation(paddleclas_root, photos, tmp_path_factory) -> tuple[Reference, Path]:
    """PaddleClas's layout of a training output: output/PPLCNet_x1_0/best_model.pdparams."""
    folder = tmp_path_factory.mktemp("orientation") / "PPLCNet_x1_0"
    folder.mkdir()
    ref = reference(paddleclas_root, photos, folder / "best_model.pdparams",
                    configs.PULC_IMAGE_ORIENTATION, "pp_lcnet", "PPLCNet_x1_0", 4,
                    {"use_last_conv": False})
    (folder / "best_model").mkdir()  # PaddleClas's best_model/model.pdparams beside it
    return ref, folder


@pytest.mark.parametrize("config_text", [configs.PULC_IMAGE_ORIENTATION, configs.PADDLEX_DOC_ORI],
                         ids=["PULC image_orientation", "PaddleX doc_ori"])
def test_orientation_exports_from_its_config_with_the_best_model_prefix(
        orientation, config_text, tmp_path):
    ref, folder = orientation
    config = write(tmp_path, "config.yaml", config_text)
    out = tmp_path / "orientation"
    # PaddleClas's -o Global.pretrained_model=output/PPLCNet_x1_0/best_model: a prefix.
    export_cli(["-c", str(config), "-p", str(folder / "best_model")], out)
    assert read_card(out / "inference.yml").provenance["arguments"]["use_last_conv"] is False
    assert_scores_agree(predictions(ref, out), ref)


def test_orientation_checkpoint_without_its_config_is_refused_with_what_to_pass(orientation,
                                                                               tmp_path):
    ref, _ = orientation
    printed = export_cli(["-m", "PPLCNet_x1_0", "-p", str(ref.pdparams), "--class-num", "4"],
                         tmp_path / "refused", exit_code=2)
    assert "-c CONFIG.yaml" in printed and "--arch-arg" in printed
    assert "looks incomplete" not in printed


# -- distillation: the student (and teacher) of PaddleClas's own distillation configs ---------

@pytest.fixture(scope="module")
def mobilenet_dml(paddleclas_root, photos, tmp_path_factory) -> dict[str, Reference]:
    """MobileNetV3 large (Teacher) and small (Student), both dropout_prob null, one state
    dict keyed Teacher.* and Student.* as PaddleClas's DistillationModel saves it."""
    folder = tmp_path_factory.mktemp("dml")
    text = configs.MOBILENETV3_DML
    teacher = reference(paddleclas_root, photos, folder / "teacher.pdparams", text,
                        "mobilenet_v3", "MobileNetV3_large_x1_0", 1000, {"dropout_prob": None},
                        prefix="Teacher.")
    beside = {f"Teacher.{key}": value for key, value in teacher.state.items()}
    student = reference(paddleclas_root, photos, folder / "best_model.pdparams", text,
                        "mobilenet_v3", "MobileNetV3_small_x1_0", 1000, {"dropout_prob": None},
                        prefix="Student.", beside=beside)
    teacher.pdparams = student.pdparams  # the one file, with both parts
    # PaddleClas's own name for it: a config.yaml beside best_model.pdparams is what training
    # leaves, which export would read without -c.
    config = write(folder, "mv3_large_x1_0_distill_mv3_small_x1_0_dml.yaml", text)
    return {"Student": student, "Teacher": teacher, "config": config}


@pytest.mark.parametrize("part", ["Student", "Teacher"])
def test_mobilenetv3_distillation_part_exports_from_its_config_without_dropout(
        mobilenet_dml, part, tmp_path):
    ref = mobilenet_dml[part]
    out = tmp_path / part
    args = ["-c", str(mobilenet_dml["config"]), "-p", str(ref.pdparams)]
    printed = export_cli(args + (["--checkpoint-part", part] if part == "Teacher" else []), out)
    card = read_card(out / "inference.yml")
    assert card.model_name == ref.name and card.provenance["checkpoint_part"] == part
    assert card.provenance["arguments"]["dropout_prob"] is None
    assert "Note:" not in printed
    assert_scores_agree(predictions(ref, out), ref)
    if part == "Teacher":  # the card's part, taken again from the same checkpoint
        assert_scores_agree(predicted(["-i", str(ref.photos[0].parent), "--model", str(out),
                                       "--engine", "executor-persistable"]), ref)


def test_distillation_checkpoint_without_config_exports_student_and_says_so(mobilenet_dml,
                                                                            tmp_path):
    ref = mobilenet_dml["Student"]
    printed = export_cli(["-m", ref.name, "-p", str(ref.pdparams)], tmp_path / "student")
    assert "distillation parts Teacher, Student: exported Student" in printed
    assert "dropout_prob 0.2" in printed


def test_a_part_the_checkpoint_lacks_is_refused_naming_the_parts(mobilenet_dml, tmp_path):
    ref = mobilenet_dml["Student"]
    printed = export_cli(["-m", ref.name, "-p", str(ref.pdparams), "--checkpoint-part",
                          "Assistant"], tmp_path / "none", exit_code=2)
    assert "Teacher, Student" in printed and "Assistant" in printed


@pytest.fixture(scope="module")
def pplcnet_ssld(paddleclas_root, photos, tmp_path_factory) -> tuple[Reference, Path]:
    """PPLCNet_x1_0_ssld.yaml: Student PPLCNet_x1_0 with dropout_prob 0.0 beside a ResNet50_vd
    Teacher (its weights random: only the student is compared)."""
    import paddle

    from .paddleclas_reference import legendary_model

    folder = tmp_path_factory.mktemp("ssld")
    paddle.disable_static()
    teacher = legendary_model(paddleclas_root, "resnet", "ResNet50_vd", class_num=1000)
    beside = {f"Teacher.{key}": value for key, value in teacher.state_dict().items()}
    ref = reference(paddleclas_root, photos, folder / "best_model.pdparams", configs.PPLCNET_SSLD,
                    "pp_lcnet", "PPLCNet_x1_0", 1000, {"dropout_prob": 0.0},
                    prefix="Student.", beside=beside)
    return ref, write(folder, "PPLCNet_x1_0_ssld.yaml", configs.PPLCNET_SSLD)


def test_pplcnet_ssld_student_exports_from_its_config_with_dropout_zero(pplcnet_ssld, tmp_path):
    ref, config = pplcnet_ssld
    out = tmp_path / "ssld"
    export_cli(["-c", str(config), "-p", str(ref.pdparams)], out)
    assert read_card(out / "inference.yml").provenance["arguments"]["dropout_prob"] == 0.0
    assert_scores_agree(predictions(ref, out), ref)
