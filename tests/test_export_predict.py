"""Export a persistable checkpoint, predict with the exported model: the scores equal the
training program's own on the same preprocessed input (issue 3's "done when")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.models import get_model
from ppinfer.models.program import build_static_model
from ppinfer.pipeline.decode import load_image
from ppinfer.pipeline.preprocess import preprocess_image
from ppinfer.runtime.paddle_env import paddle_env

from .conftest import CLASS_NUM

FORMATS = ["pir", "legacy", "seed"] if paddle_env().can_run_pir else ["legacy", "seed"]
EXPECTED_FILES = {
    "pir": {"inference.json", "inference.pdmodel", "inference.pdiparams", "inference.yml"},
    "legacy": {"inference.pdmodel", "inference.pdiparams", "inference.yml"},
    "seed": {"model", "params", "inference.yml"},
}


@pytest.fixture(scope="module")
def reference_scores(resnet50_vd_checkpoint, photos) -> np.ndarray:
    """The training program's softmax on chelsea, preprocessed the architecture's way."""
    spec = get_model("ResNet50_vd")
    model = build_static_model(spec, CLASS_NUM)
    model.load_checkpoint(resnet50_vd_checkpoint)
    batch = preprocess_image(load_image(photos["chelsea"]), spec.preprocess)[None]
    return model.run(batch)[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_exported_model_predicts_the_training_programs_scores(
    fmt, resnet50_vd_checkpoint, photos, reference_scores, tmp_path
):
    out = tmp_path / f"out-{fmt}"
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "-m", "ResNet50_vd", "-p", str(resnet50_vd_checkpoint),
                                 "-o", str(out), "--class-num", str(CLASS_NUM), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "max |score diff|" in result.output
    assert {p.name for p in out.iterdir()} == EXPECTED_FILES[fmt]

    result = runner.invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--model", str(out),
                                 "--engine", "analysis", "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    order = np.argsort(-reference_scores, kind="stable")[:5]
    assert line["file_name"] == str(photos["chelsea"])
    assert line["class_ids"] == order.tolist()
    np.testing.assert_allclose(line["scores"], reference_scores[order], atol=1e-5)
    assert line["label_names"] == [f"class_{i}" for i in order]


def test_export_card_carries_preprocessing_labels_and_provenance(resnet50_vd_checkpoint, tmp_path):
    from ppinfer.checkpoints import sha256
    from ppinfer.modelfiles.modelcard import read_card

    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"thing {i}" for i in range(CLASS_NUM)) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "export", "-m", "ResNet50_vd", "-p", str(resnet50_vd_checkpoint), "-o", str(out),
        "--class-num", str(CLASS_NUM), "--labels", str(labels), "--no-validate"])
    assert result.exit_code == 0, result.output
    card = read_card(out / "inference.yml")
    assert card.model_name == "ResNet50_vd"
    assert card.preprocess == get_model("ResNet50_vd").preprocess
    assert card.labels == [f"thing {i}" for i in range(CLASS_NUM)]
    assert card.provenance["class_num"] == CLASS_NUM
    assert card.provenance["input_shape"] == [3, 224, 224]
    assert card.provenance["checkpoint_sha256"] == sha256(resnet50_vd_checkpoint)
    assert card.provenance["paddle_version"] == paddle_env().version


def test_export_refuses_to_overwrite_without_force(resnet50_vd_checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["export", "-m", "ResNet50_vd", "-p", str(resnet50_vd_checkpoint), "-o", str(out),
            "--class-num", str(CLASS_NUM), "--no-validate"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: Output directory {out} is not empty: pass --force to replace it.")
    assert (out / "keep.txt").read_text() == "mine"
    result = CliRunner().invoke(cli, [*args, "--force"])  # not a model: --force refuses too
    assert result.exit_code == 2
    assert "holds no model, so --force will not replace it: it would delete keep.txt" in \
        result.output
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    assert CliRunner().invoke(cli, args).exit_code == 0  # empty: written
    result = CliRunner().invoke(cli, [*args, "--force"])  # a model: replaced
    assert result.exit_code == 0, result.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_wrong_class_num_names_the_variable_both_shapes_and_the_fix(resnet50_vd_checkpoint,
                                                                    tmp_path):
    result = CliRunner().invoke(cli, ["export", "-m", "ResNet50_vd", "-p",
                                      str(resnet50_vd_checkpoint), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: fc_0.w_0 is [2048, {CLASS_NUM}] in {resnet50_vd_checkpoint}, ResNet50_vd makes "
        f"[2048, 1000]: pass --class-num {CLASS_NUM}.")
    assert not (tmp_path / "o").exists()


def test_checkpoint_of_another_architecture_lists_what_is_missing(resnet50_vd_checkpoint,
                                                                  tmp_path):
    result = CliRunner().invoke(cli, ["export", "-m", "MobileNetV3_small_x1_0", "-p",
                                      str(resnet50_vd_checkpoint), "-o", str(tmp_path / "o"),
                                      "--class-num", str(CLASS_NUM)])
    assert result.exit_code == 2
    text = result.output.strip()
    assert text.startswith(f"Error: {resnet50_vd_checkpoint} names none of MobileNetV3_small_x1_0")
    assert "check --model-name matches the checkpoint." in text
    assert text.count("\n") == 0


def test_image_shape_sets_the_input_and_scales_the_preprocessing(photos, tmp_path):
    from ppinfer.modelfiles.modelcard import read_card

    from .conftest import save_persistable

    model = build_static_model(get_model("MobileNetV3_small_x0_35"), 4, (3, 128, 128),
                               ir="legacy")
    ckpt = save_persistable(model, tmp_path / "ckpt")
    out = tmp_path / "small"
    runner = CliRunner()
    result = runner.invoke(cli, ["export", "-m", "MobileNetV3_small_x0_35", "-p", str(ckpt),
                                 "-o", str(out), "--class-num", "4", "--image-shape", "3,128,128"])
    assert result.exit_code == 0, result.output
    card = read_card(out / "inference.yml")
    assert card.input_shape == (3, 128, 128)
    assert card.preprocess.crop_size == (128, 128) and card.preprocess.resize_short == 146
    result = runner.invoke(cli, ["predict", "-i", str(photos["coffee"]), "--model", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["class_ids"]) == 4


def test_bad_image_shape_is_a_usage_error(resnet50_vd_checkpoint, tmp_path):
    result = CliRunner().invoke(cli, ["export", "-m", "ResNet50_vd", "-p",
                                      str(resnet50_vd_checkpoint), "-o", str(tmp_path / "o"),
                                      "--image-shape", "224,224"])
    assert result.exit_code == 2
    assert "expected C,H,W such as 3,224,224" in result.output


@pytest.mark.skipif(not paddle_env().can_run_pir, reason="Paddle 2.6 writes legacy only")
def test_a_pir_export_carries_the_legacy_program_and_predict_runs_it(tmp_path, photos):
    """inference.json for PaddleClas/PaddleX, inference.pdmodel beside it on the same
    parameters; predict runs the legacy one (faster, and OpenVINO reads it directly), with the
    same scores as the PIR one."""
    import ppinfer
    from ppinfer.modelfiles.formats import detect_directory

    out = ppinfer.export("EfficientNet_lite0", None, tmp_path / "m", format="pir").output
    assert {"inference.json", "inference.pdmodel"} <= {p.name for p in out.iterdir()}
    with ppinfer.load(out) as legacy, ppinfer.load(out / "inference.json") as pir:
        assert legacy.source.layout.program.name == "inference.pdmodel"
        assert pir.source.layout.program.name == "inference.json"
        a, b = legacy.predict(photos["chelsea"])[0], pir.predict(photos["chelsea"])[0]
    assert a.class_ids == b.class_ids
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert detect_directory(out, prefer="pir").program.name == "inference.json"
