"""Every seed layout, saved with Paddle's own legacy API, runs on every engine that can load it,
with the training program's scores (issue 4's "done when"), on Paddle 3.x and 2.6."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.models import get_model
from ppinfer.models.program import build_static_model
from ppinfer.pipeline.decode import load_image
from ppinfer.pipeline.preprocess import preprocess_image

from .conftest import CLASS_NUM, save_persistable


@pytest.fixture(scope="module")
def trained(resnet50_vd_checkpoint):
    """The legacy-IR training program with the checkpoint loaded."""
    model = build_static_model(get_model("ResNet50_vd"), CLASS_NUM, ir="legacy")
    model.load_checkpoint(resnet50_vd_checkpoint)
    return model


@pytest.fixture(scope="module")
def layouts(trained, resnet50_vd_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """persistable dir, uncombined model + variable files, combined model + params."""
    import paddle

    root = tmp_path_factory.mktemp("layouts")
    with trained.guard():
        program = paddle.static.serialize_program([trained.feed], [trained.fetch],
                                                  program=trained.program)
        params = paddle.static.serialize_persistables([trained.feed], [trained.fetch],
                                                      trained.executor, program=trained.program)
    uncombined = save_persistable(trained, root / "uncombined")
    (uncombined / "model").write_bytes(program)
    combined = root / "combined"
    combined.mkdir()
    (combined / "model").write_bytes(program)
    (combined / "params").write_bytes(params)
    return {"persistable": resnet50_vd_checkpoint, "uncombined": uncombined,
            "combined": combined}


@pytest.fixture(scope="module")
def reference(trained, photos) -> np.ndarray:
    spec = get_model("ResNet50_vd")
    return trained.run(preprocess_image(load_image(photos["chelsea"]), spec.preprocess)[None])[0]


CASES = [
    ("persistable", "executor-persistable",
     lambda d: ["--model-name", "ResNet50_vd", "-p", str(d), "--class-num", str(CLASS_NUM)]),
    ("uncombined", "analysis", lambda d: ["-d", str(d)]),
    ("uncombined", "executor-inference", lambda d: ["-d", str(d), "-m", "model"]),
    ("combined", "analysis", lambda d: ["-m", str(d / "model"), "-p", str(d / "params")]),
    ("combined", "executor-inference", lambda d: ["-d", str(d), "-m", "model", "-p", "params"]),
]


@pytest.mark.parametrize(("layout", "engine", "args"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_engine_reproduces_the_training_programs_scores(layout, engine, args, layouts, reference,
                                                        photos):
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine", engine,
                                      "--json", *args(layouts[layout])])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    order = np.argsort(-reference, kind="stable")[:5]
    assert line["class_ids"] == order.tolist()
    np.testing.assert_allclose(line["scores"], reference[order], atol=1e-5)


def test_engine_all_prints_a_parity_row_per_engine_and_exits_0(layouts, photos):
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine", "all",
                                      "--json", "-d", str(layouts["combined"])])
    assert result.exit_code == 0, result.output
    rows = {r["engine"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["analysis"]["max_abs_diff"] == 0.0
    assert rows["executor-inference"]["max_abs_diff"] < 1e-5
    assert rows["executor-inference"]["top1"] == rows["analysis"]["top1"]
    assert "needs --model-name" in rows["executor-persistable"]["skipped"]


def test_engine_all_table_includes_the_persistable_engine_when_it_can(layouts, photos, tmp_path):
    out = tmp_path / "exported"
    result = CliRunner().invoke(cli, ["export", "-m", "ResNet50_vd", "-p",
                                      str(layouts["persistable"]), "-o", str(out),
                                      "--class-num", str(CLASS_NUM)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine", "all",
                                      "--model", str(out)])
    assert result.exit_code == 0, result.output
    for engine in ("analysis", "executor-inference", "executor-persistable"):
        assert engine in result.output
    assert "skipped" not in result.output


def test_engine_all_exits_1_when_engines_disagree_beyond_tolerance(layouts, photos):
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine", "all",
                                      "--tolerance", "0", "-d", str(layouts["combined"])])
    if "0.00e+00" in result.output.split("executor-inference")[1].splitlines()[0]:
        pytest.skip("the two engines agreed bit for bit on this Paddle build")
    assert result.exit_code == 1
    assert "more than --tolerance 0." in result.output


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "holds no model: found nothing"),
        (["params"], "holds parameters (params) but no program file"),
        (["model"], "holds a program (model) but no parameters"),
    ],
)
def test_bad_layouts_exit_2_with_one_sentence(layouts, tmp_path, files, message):
    d = tmp_path / "m"
    d.mkdir()
    for name in files:
        shutil.copy(layouts["combined"] / name, d / name)
    result = CliRunner().invoke(cli, ["predict", "-i", "x.jpg", "-d", str(d)])
    assert result.exit_code == 2
    assert message in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")


def test_params_of_another_architecture_exit_2(layouts, photos):
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine",
                                      "executor-persistable", "--model-name", "ResNet18_vd",
                                      "-p", str(layouts["persistable"])])
    assert result.exit_code == 2
    assert result.output.startswith("Error: res2a_branch2a_weights is [64, 64, 1, 1] in ")
    assert result.output.endswith(
        "ResNet18_vd makes [64, 64, 3, 3] (29 more variables differ too): check --model-name "
        "matches the checkpoint.\n")


def test_engine_all_gives_a_skip_reason_whole_below_the_table_at_80_columns(layouts, photos):
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos["chelsea"]), "--engine", "all",
                                      "-d", str(layouts["combined"])],
                                terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    (reason,) = [line for line in result.stderr.splitlines()
                 if line.startswith("executor-persistable skipped: ")]
    assert reason.endswith("(-p)"), reason  # whole, not cut at the column's edge
    table = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert all(line.split("│")[1].strip() for line in table), "a wrapped cell made a row"
