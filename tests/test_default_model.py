"""The built-in model is real: ImageNet EfficientNet-Lite0 from the installed weights package,
exported once into the cache, names real photos correctly on every engine (issue 5)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ppinfer.api.builtin_model import default_model_dir
from ppinfer.cli import cli
from ppinfer.modelfiles.modelcard import read_card
from ppinfer.pipeline.sample import sample_image_path

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def predict_json(*args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["predict", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_predict_with_no_arguments_names_the_shipped_cat():
    (line,) = predict_json()
    assert line["file_name"] == str(sample_image_path())
    assert line["class_ids"][0] in CAT_CLASSES
    assert line["label_names"][0] in {"tiger cat", "tabby, tabby cat", "Egyptian cat"}
    assert line["scores"][0] > 0.3


def test_default_model_is_exported_once_and_reused():
    first = default_model_dir()
    stamp = (first / "inference.yml").stat().st_mtime_ns
    assert default_model_dir() == first
    assert (first / "inference.yml").stat().st_mtime_ns == stamp
    card = read_card(first / "inference.yml")
    assert card.model_name == "EfficientNet_lite0"
    assert card.preprocess.mean == (127.0,) * 3 and card.preprocess.std == (128.0,) * 3
    assert card.labels[282] == "tiger cat"


def test_scikit_image_photos_get_their_classes(photos):
    by_name = {line["file_name"]: line for line in predict_json(
        "-i", str(photos["chelsea"]), "-i", str(photos["coffee"]), "-b", "2")}
    assert by_name[str(photos["chelsea"])]["class_ids"][0] in CAT_CLASSES
    assert by_name[str(photos["coffee"])]["class_ids"][0] in COFFEE_CLASSES


@pytest.mark.parametrize("engine", ["analysis", "executor-inference", "executor-persistable"])
def test_every_engine_names_the_cat(engine, photos):
    (line,) = predict_json("-i", str(photos["chelsea"]), "--engine", engine)
    assert line["class_ids"][0] in CAT_CLASSES


def test_the_three_engines_agree_on_real_photos(photos):
    result = CliRunner().invoke(cli, ["predict", "--engine", "all", "--json",
                                      "-i", str(photos["chelsea"]), "-i", str(photos["coffee"])])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["engine"] for r in rows} >= {"analysis", "executor-inference",
                                           "executor-persistable"}
    for row in rows:
        if "skipped" in row:
            continue
        assert row["max_abs_diff"] < 1e-4
        assert row["top1"][0] in CAT_CLASSES and row["top1"][1] in COFFEE_CLASSES


def test_export_from_the_pytorch_file_carries_the_models_own_preprocessing(tmp_path, photos):
    from ppinfer.models.efficientnet import lite0_weights_path

    out = tmp_path / "lite0"
    result = CliRunner().invoke(cli, ["export", "-m", "EfficientNet_lite0", "-p",
                                      str(lite0_weights_path()), "-o", str(out), "--format",
                                      "legacy"])
    assert result.exit_code == 0, result.output
    card = read_card(out / "inference.yml")
    assert card.preprocess.interpolation == "bicubic"
    assert card.provenance["checkpoint"].endswith(".pth")
    (line,) = predict_json("-i", str(photos["coffee"]), "--model", str(out))
    assert line["class_ids"][0] in COFFEE_CLASSES
