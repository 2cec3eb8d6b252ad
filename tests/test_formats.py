"""Model layouts are told apart by what is on disk, and a path holding no model says what it
found and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from ppinfer.errors import ModelFormatError
from ppinfer.modelfiles.formats import detect_directory, detect_model


def touch(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"x")
    return directory


@pytest.mark.parametrize(
    ("files", "kind", "program", "params"),
    [
        (["inference.json", "inference.pdiparams", "inference.yml"], "pir", "inference.json",
         "inference.pdiparams"),
        (["inference.pdmodel", "inference.pdiparams"], "legacy", "inference.pdmodel",
         "inference.pdiparams"),
        (["model", "params"], "seed", "model", "params"),
        (["model", "conv1_weights", "fc_0.w_0"], "uncombined", "model", None),
        (["__model__", "conv1_weights"], "uncombined", "__model__", None),
        (["conv1_weights", "fc_0.w_0"], "persistable", None, None),
        (["best.pdparams", "best.pdopt"], "pdparams", None, "best.pdparams"),
    ],
)
def test_each_layout_is_detected(tmp_path, files, kind, program, params):
    layout = detect_directory(touch(tmp_path / "m", *files))
    assert layout.kind == kind
    assert (layout.program.name if layout.program else None) == program
    assert (layout.params.name if layout.params else None) == params


def test_with_json_and_pdmodel_the_installed_paddles_native_program_wins(tmp_path):
    d = touch(tmp_path / "m", "inference.json", "inference.pdmodel", "inference.pdiparams")
    assert detect_directory(d, prefer="pir").program.name == "inference.json"
    assert detect_directory(d, prefer="legacy").program.name == "inference.pdmodel"


def test_explicit_files_relative_to_a_model_dir_like_the_seeds_py_infer(tmp_path):
    d = touch(tmp_path / "m", "model", "params")
    layout = detect_model(d, "model", "params")
    assert layout.kind == "seed" and layout.program == d / "model"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "holds no model: found nothing; expected inference.json"),
        (["inference.pdiparams"], "holds parameters (inference.pdiparams) but no program file"),
        (["params"], "holds parameters (params) but no program file"),
        (["inference.pdmodel"], "holds a program (inference.pdmodel) but no parameters"),
        (["model"], "holds a program (model) but no parameters"),
        (["notes.md"], "holds no model: found notes.md;"),
    ],
)
def test_bad_layouts_say_what_is_wrong_in_one_sentence(tmp_path, files, message):
    d = touch(tmp_path / "m", *files)
    with pytest.raises(ModelFormatError) as info:
        detect_directory(d)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_directory_and_file_instead_of_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist: check --model"):
        detect_directory(tmp_path / "nope")
    touch(tmp_path, "f")
    with pytest.raises(ModelFormatError, match="is a file, not a model directory"):
        detect_directory(tmp_path / "f")


def _paddlex_training_output(root, model_dir):
    """The folders a PaddleX training run leaves: output/train_result.json,
    output/best_model/{best_model.pdparams, inference/...}."""
    import shutil

    best = root / "output" / "best_model"
    shutil.copytree(model_dir, best / "inference")
    (best / "best_model.pdparams").write_bytes(b"\x80\x04}\x94.")  # an empty pickled dict
    (root / "output" / "train_result.json").write_text('{"done_flag": true, "models": {}}')
    return root / "output"


@pytest.mark.parametrize("given", ["output", "output/best_model"])
def test_a_paddlex_training_output_folder_stands_for_its_exported_model(given, tmp_path):
    from ppinfer.api.builtin_model import default_model_dir

    _paddlex_training_output(tmp_path, default_model_dir())
    layout = detect_directory(tmp_path / given)
    assert layout.is_inference_model
    assert layout.root == tmp_path / "output" / "best_model" / "inference"


def test_a_json_file_that_is_not_a_program_is_not_called_one(tmp_path):
    (tmp_path / "train_result.json").write_text('{"done_flag": true}')
    with pytest.raises(ModelFormatError) as caught:
        detect_directory(tmp_path)
    assert "holds no model" in str(caught.value)
    assert "holds a program" not in str(caught.value)
