"""``ppinfer export -p`` into a PaddleX / PaddleClas training output folder, without ``-c``
(issue 20): the ``config.yaml`` those tools leave there is found, used and said; looked for
only where they write it; a different ``-m`` is refused naming it; where they leave none, the
export is today's.

The trees are laid out as the tools write them: PaddleX's trainer and PaddleClas's
``tools/train.py`` with ``Global.uniform_output_enabled`` (which PaddleX sets) dump the config
into ``Global.output_dir`` (PaddleClas last, with ``yaml.dump``: keys sorted, aliases spelled
out) and ``save_model`` writes ``<prefix>/<prefix>.pdparams`` (+ ``.pdopt``, ``.pdstates``)
per save, ``best_model/best_model/model.pdparams`` again, ``<prefix>/<prefix>.info.json`` and
``train_results.json``; without uniform output PaddleClas 2.6 writes ``<prefix>.pdparams``
into ``output_dir`` itself (2.5: into ``output_dir/<Arch.name>/``) and no config.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ppinfer.checkpoints.training_outputs import configs_beside
from ppinfer.errors import ConfigError
from ppinfer.modelfiles.export_plan import plan_export

from . import paddleclas_configs as configs
from .paddleclas_reference import run_cli

ARCH = "PPLCNet_x0_25"
CLASSES = 2
USING = ("Using the training config {} (found beside the checkpoint); pass -c to use another, "
         "--no-config to use none.")


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    """A 2-class PP-LCNet x0.25 state dict, keyed as PaddleClas saves it (stride_list does
    not change a key or a shape). Its batch norms shift by random biases, as trained ones do:
    a fresh network's features are near zero and score every photo 0.5, 0.5."""
    import paddle

    from ppinfer.models import get_model

    paddle.disable_static()
    paddle.seed(5)
    net = get_model(ARCH).build(class_num=CLASSES)
    rng = np.random.default_rng(5)
    return {key: (rng.uniform(-0.1, 0.3, value.shape).astype(np.float32)
                  if key.endswith("bn.bias") else value.numpy())
            for key, value in net.state_dict().items()}


def training_config(output: Path) -> dict:
    """PaddleX's PP-LCNet textline_ori config (stride_list [2, [2, 1], ...], input 3x80x160)
    on x0.25, with the Global keys PaddleX's train() adds, as PaddleClas's train.py dumps it."""
    import yaml

    doc = yaml.safe_load(configs.PADDLEX_TEXTLINE_ORI.replace("PPLCNet_x1_0", ARCH))
    doc["Global"]["output_dir"] = str(output.resolve())
    # PaddleX's update_dataset: the dataset's label.txt (gone here: another machine's)
    doc["Infer"]["PostProcess"]["class_id_map_file"] = "/data/textline_ori/label.txt"
    return doc


def save_model(state: dict, folder: Path, prefix: str, best_copy: bool = False) -> Path:
    """What PaddleClas's save_model writes for one save into ``folder``."""
    import paddle

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{prefix}.pdparams"
    paddle.save(state, str(weights))
    paddle.save([{"LR_Scheduler": {"last_epoch": 1}}], str(folder / f"{prefix}.pdopt"))
    paddle.save({"metric": 0.5, "epoch": 1}, str(folder / f"{prefix}.pdstates"))
    if best_copy:
        (folder / "best_model").mkdir(exist_ok=True)
        paddle.save(state, str(folder / "best_model" / "model.pdparams"))
    return weights


def uniform_output(state: dict, output: Path) -> Path:
    """PaddleX's (and PaddleClas's uniform) training output folder; its config.yaml."""
    import yaml

    output.mkdir(parents=True)
    config = output / "config.yaml"
    config.write_text(yaml.dump(training_config(output)), encoding="utf-8")
    for prefix in ("best_model", "epoch_1", "latest"):
        save_model(state, output / prefix, prefix, best_copy=prefix == "best_model")
        (output / prefix / f"{prefix}.info.json").write_text('{"metric": 0.5, "epoch": 1}')
    (output / "train_results.json").write_text(json.dumps({
        "model_name": "PP-LCNet_x1_0_textline_ori", "train_log": "train.log",
        "config": "config.yaml", "done_flag": True,
        "models": {"best": {"score": 0.5, "pdparams": "best_model/best_model.pdparams"}}}))
    (output / "train.log").write_text("[Train][Epoch 1/1]\n")
    (output / "label_dict.txt").write_text("0 0_degree\n1 180_degree\n")
    return config


def scores(model: Path) -> np.ndarray:
    import ppinfer
    from ppinfer.pipeline.sample import sample_image_path

    with ppinfer.load(model, top_k=CLASSES) as predictor:
        result = predictor.predict(str(sample_image_path()))[0]
    return np.asarray(result.scores)[np.argsort(result.class_ids)]


def absolute(path: Path) -> Path:
    """As configs_beside gives it: absolute, links kept (the folders the user named)."""
    return Path(os.path.abspath(path))


def card(model: Path) -> dict:
    import yaml

    return yaml.safe_load((model / "inference.yml").read_text())


def test_an_export_from_a_paddlex_checkpoint_alone_uses_its_config_and_scores_as_with_c(
        state, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = uniform_output(state, Path("output"))
    best = Path("output/best_model/best_model.pdparams")
    run_cli(["export", "-c", str(config), "-p", str(best), "-o", "with_c"])
    printed = run_cli(["export", "-p", str(best), "-o", "alone"])
    assert USING.format(config) in printed
    assert card(Path("alone"))["ppinfer"]["input_shape"] == [3, 80, 160]
    assert card(Path("alone"))["ppinfer"]["arguments"]["stride_list"] == [2, [2, 1], [2, 1],
                                                                         [2, 1], [2, 1]]
    np.testing.assert_array_equal(scores(Path("alone")), scores(Path("with_c")))
    # The labels: PaddleX's copy of the dataset's label.txt beside the config, both ways.
    assert "the labels are output/label_dict.txt, PaddleX's copy of it" in printed
    assert card(Path("alone"))["PostProcess"]["Topk"]["label_list"] == ["0_degree", "180_degree"]
    assert card(Path("with_c"))["PostProcess"] == card(Path("alone"))["PostProcess"]
    assert card(Path("alone"))["ppinfer"]["training_config"] == str(absolute(config))
    # Without it the same -p builds PaddleClas's defaults (strides 2, input 224), as before.
    os.rename(config, "kept.yaml")
    run_cli(["export", "-m", ARCH, "-p", str(best), "-o", "defaults", "--class-num", "2",
             "--no-validate"])
    assert card(Path("defaults"))["ppinfer"]["input_shape"] == [3, 224, 224]


def test_the_python_api_finds_it_too_and_warns_it_as_an_export_note(state, tmp_path,
                                                                     monkeypatch):
    import ppinfer

    monkeypatch.chdir(tmp_path)
    config = uniform_output(state, Path("output"))
    with pytest.warns(ppinfer.ExportNote, match="Using the training config output/config.yaml"):
        result = ppinfer.export(None, "output/latest", "out", validate=False)
    assert result.notes[0] == USING.format(config)
    assert (result.model_name, result.input_shape) == (ARCH, (3, 80, 160))


def test_a_distillation_students_own_file_exports_with_the_config_beside_it(state, tmp_path,
                                                                            monkeypatch):
    """PaddleClas's save_model also writes best_model_student.pdparams (the Student's
    weights alone) when training a DistillationModel: its config's student arguments
    (dropout_prob 0.0) build it."""
    import paddle

    monkeypatch.chdir(tmp_path)
    Path("output/best_model").mkdir(parents=True)
    Path("output/config.yaml").write_text(
        configs.PPLCNET_SSLD.replace("PPLCNet_x1_0", ARCH).replace("&class_num 1000",
                                                                   "&class_num 2"))
    paddle.save(state, "output/best_model/best_model_student.pdparams")
    printed = run_cli(["export", "-p", "output/best_model/best_model_student.pdparams",
                       "-o", "student", "--no-validate"])
    assert USING.format("output/config.yaml") in printed and "Assumed" not in printed
    written = card(Path("student"))["ppinfer"]
    assert written["arguments"]["dropout_prob"] == 0.0 and "checkpoint_part" not in written


@pytest.mark.parametrize("given", [
    "output/best_model/best_model.pdparams", "output/best_model/best_model",
    "output/best_model/", "output", "output/best_model/best_model/model.pdparams",
    "output/epoch_1/epoch_1.pdparams", "output/latest/latest", "output/latest",
])
def test_every_checkpoint_the_training_saves_finds_the_output_folders_config(
        state, tmp_path, given):
    config = uniform_output(state, tmp_path / "output")
    assert configs_beside(tmp_path / given) == [absolute(config)]


def test_the_ema_and_student_files_beside_the_best_model_find_it_too(state, tmp_path):
    config = uniform_output(state, tmp_path / "output")
    import paddle

    for name in ("best_model.pdema", "best_model_student.pdparams"):
        paddle.save(state, str(tmp_path / "output" / "best_model" / name))
        assert configs_beside(tmp_path / "output" / "best_model" / name) == [absolute(config)]


def test_paddleclas_without_uniform_output_leaves_no_config_and_export_is_unchanged(
        state, tmp_path, monkeypatch):
    """PaddleClas 2.6's plain tools/train.py: output/epoch_5.pdparams ...; 2.5's:
    output/<Arch>/latest.pdparams. Neither writes a config: the export is -m's, as before."""
    monkeypatch.chdir(tmp_path)
    for prefix in ("best_model", "epoch_5", "latest"):
        save_model(state, Path("output"), prefix, best_copy=prefix == "best_model")
        save_model(state, Path("output") / ARCH, prefix, best_copy=prefix == "best_model")
    for given in ("output/epoch_5.pdparams", "output/best_model", "output",
                  f"output/{ARCH}/latest.pdparams", "output/best_model/model.pdparams"):
        assert configs_beside(Path(given)) == [], given
    printed = run_cli(["export", "-m", ARCH, "-p", "output/epoch_5.pdparams", "-o", "out",
                       "--class-num", "2", "--no-validate"])
    assert "found beside" not in printed and "Note: Assumed PaddleClas's defaults" in printed
    assert "training_config" not in card(Path("out"))["ppinfer"]


def test_a_config_is_looked_for_only_where_the_tools_write_it(state, tmp_path):
    """Not beside a checkpoint named otherwise (a model zoo download), not above a folder the
    tools do not make, not more than two folders up, not a folder named config.yaml."""
    import paddle

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "config.yaml").write_text(configs.PADDLEX_TEXTLINE_ORI)
    paddle.save(state, str(downloads / f"{ARCH}_pretrained.pdparams"))
    assert configs_beside(downloads / f"{ARCH}_pretrained.pdparams") == []
    mine = save_model(state, downloads / "mine", "best_model")
    assert configs_beside(mine) == []  # downloads/mine/ is no folder save_model makes
    deep = save_model(state, downloads / "epoch_1" / "best_model" / "latest", "latest")
    assert configs_beside(deep) == []  # three folders up
    (downloads / "epoch_1" / "config.yaml").write_text(configs.PADDLEX_TEXTLINE_ORI)
    assert configs_beside(deep) == [absolute(downloads / "epoch_1" / "config.yaml")]
    (downloads / "epoch_1" / "best_model" / "config.yaml").mkdir()
    assert configs_beside(deep) == [absolute(downloads / "epoch_1" / "config.yaml")]


def test_a_different_model_name_is_refused_naming_the_config_found(state, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    uniform_output(state, Path("output"))
    printed = run_cli(["export", "-m", "PPLCNet_x1_0", "-p", "output/best_model",
                       "-o", "out"], exit_code=2)
    assert printed.strip() == (
        f"Error: -m PPLCNet_x1_0 is not {ARCH}, the architecture of output/config.yaml (the "
        "training config found beside the checkpoint): leave -m out, pass -c with the config "
        "the checkpoint was trained with, or --no-config to ignore that one.")
    assert not Path("out").exists()
    run_cli(["export", "-m", ARCH, "-p", "output/best_model", "-o", "out", "--no-validate"])


def test_no_config_ignores_the_config_found_and_builds_what_m_names(state, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    uniform_output(state, Path("output"))
    printed = run_cli(["export", "--no-config", "-m", ARCH, "-p", "output/best_model",
                       "-o", "out", "--class-num", str(CLASSES), "--no-validate"])
    assert "Using the training config" not in printed
    made = card(Path("out"))["ppinfer"]
    assert made["input_shape"] == [3, 224, 224] and "training_config" not in made
    assert made["arguments"].get("stride_list") != [2, [2, 1], [2, 1], [2, 1], [2, 1]]
    assert run_cli(["export", "--no-config", "-c", "output/config.yaml", "-p",
                    "output/best_model", "-o", "o2"], exit_code=2).strip().endswith(
        "Give -c/--config or --no-config, not both.")
    assert run_cli(["export", "--no-config", "-p", "output/best_model", "-o", "o3"],
                   exit_code=2).strip() == ("Error: Name the architecture with -m/--model-name: "
                                            "--no-config reads no training config.")


def test_the_nearest_of_two_configs_is_used_and_the_note_names_both(state, tmp_path,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = uniform_output(state, Path("output"))
    near = Path("output/best_model/config.yaml")
    near.write_text(f"Arch:\n  name: {ARCH}\n  class_num: 3\n", encoding="utf-8")
    plan = plan_export(None, checkpoint="output/best_model")
    assert plan.class_num == 3 and plan.config.path == near
    assert plan.notes[0] == (f"Using the training config {near} (found beside the checkpoint, "
                             f"the nearest of 2: also {config}); pass -c to use another, "
                             "--no-config to use none.")
    given = plan_export(None, config=config, checkpoint="output/best_model")  # -c wins, unsaid
    assert given.class_num == CLASSES and not any("found beside" in n for n in given.notes)


def test_a_found_config_ppinfer_cannot_read_is_one_sentence_saying_where_it_came_from(
        state, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = uniform_output(state, Path("output"))
    config.write_text("Arch: {name: PPLCNet_x0_25\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        plan_export(None, checkpoint="output/latest/latest.pdparams")
    message = str(refused.value)
    assert message.startswith("Training config output/config.yaml is not valid YAML (")
    assert message.endswith(") (the training config found beside the checkpoint): pass -c with "
                            "the one to use, or --no-config.")
    config.write_text("Arch:\n  name: SE_ResNet50_vd\n", encoding="utf-8")  # not built here
    with pytest.raises(ConfigError) as refused:
        plan_export("PPLCNet_x0_25", checkpoint="output/latest/latest.pdparams")
    assert str(refused.value).startswith(
        "The training config found beside the checkpoint, output/config.yaml, trains "
        "SE_ResNet50_vd, which ppinfer does not build: pass -c with the config to use")


@pytest.mark.parametrize("given", ["train_output/nope", "train_output/best_model.pdparams"])
def test_a_mistyped_checkpoint_without_m_says_it_does_not_exist(tmp_path, monkeypatch, given):
    """A stranger's find: with no -m (the found config makes that usual) a path that is not
    there said 'Name the architecture'; the missing file comes first."""
    from ppinfer.errors import CheckpointError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=f"Checkpoint {given} does not exist"):
        plan_export(None, checkpoint=given)
