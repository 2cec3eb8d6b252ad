"""A model ``ppinfer quantize`` wrote runs as quantized without being told (issue 22): with
neither --engine nor --precision, on the engine its card names, at int8, with no engines timed;
``--engine analysis`` alone runs a Paddle PTQ model at int8, not as simulated float
arithmetic; a float precision asked for by name runs as asked with a one-line warning. The same
for ``ppinfer.load`` (and so ``serve``) and ``bench``. Models: the built-in Lite0 quantized on
scikit-image's views, 16 calibration images (tests/test_quantize.py)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import ppinfer
from ppinfer.cli import cli
from ppinfer.errors import PrecisionWarning


@pytest.fixture(scope="module")
def int8_analysis(quantized) -> Path:
    result, out = quantized("analysis")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def int8_openvino(quantized) -> Path:
    result, out = quantized("openvino")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def cat(views) -> str:
    return str(sorted(views.glob("chelsea-1.0-*"))[0])


@pytest.fixture
def no_default_engine(monkeypatch):
    monkeypatch.delenv("PPINFER_ENGINE", raising=False)  # conftest pins analysis


def test_predict_naming_neither_engine_nor_precision_runs_an_openvino_int8_model_on_openvino(
        int8_openvino, cat, no_default_engine):
    result = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_openvino), "--json"])
    assert result.exit_code == 0, result.output
    assert ("--engine auto: openvino int8: the model was quantized for it" in result.stderr), \
        result.stderr
    assert "Measuring" not in result.stderr  # no other engine timed: none runs its files
    assert json.loads(result.stdout)["label_names"][0] in ("tiger cat", "tabby, tabby cat",
                                                           "Egyptian cat")
    with ppinfer.load(int8_openvino) as predictor:  # the Python API and serve: the same
        assert (predictor.engine.name, predictor.config.precision) == ("openvino", "int8")


def test_engine_auto_takes_an_analysis_int8_model_s_engine_and_serve_loads_it_at_int8(
        int8_analysis, cat, no_default_engine):
    from ppinfer.api.predictor import plan_load

    result = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_analysis),
                                      "--engine", "auto"])
    assert result.exit_code == 0, result.output
    assert "--engine auto: analysis int8: the model was quantized for it" in result.stderr
    plan = plan_load(int8_analysis)  # what ppinfer serve builds, locally or on Ray replicas
    assert (plan.engine, plan.config.precision) == ("analysis", "int8")


def test_engine_analysis_without_precision_runs_a_paddle_int8_model_at_int8_silently(
        int8_analysis, cat):
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        with ppinfer.load(int8_analysis, engine="analysis") as predictor:
            assert predictor.config.precision == "int8"
    result = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_analysis),
                                      "--engine", "analysis"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr, result.stderr
    assert "measured when it was quantized" in result.stderr  # no fp32 twin run on it


def test_a_float_precision_named_on_an_int8_model_runs_as_asked_and_warns_in_one_line(
        int8_analysis, cat):
    result = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_analysis),
                                      "--engine", "analysis", "--precision", "fp32", "--json"])
    assert result.exit_code == 0, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert said == [("warning: this model is int8 (quantized for analysis): --precision fp32 "
                     "runs its quantize ops as float arithmetic, far slower than int8 (24x for "
                     "the built-in Lite0) and than the float model; drop --precision (or pass "
                     "--precision int8) to run it as int8.")], result.stderr
    with (pytest.warns(PrecisionWarning, match="--precision fp32 runs its quantize ops"),
          ppinfer.load(int8_analysis, engine="analysis", precision="fp32") as predictor):
        assert predictor.config.precision == "fp32"


def test_other_engines_refuse_another_engine_s_int8_files_and_say_which_runs_them(
        int8_analysis, cat):
    for engine in ("onnxruntime", "openvino"):
        result = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_analysis),
                                          "--engine", engine])
        assert result.exit_code == 2, result.output
        assert ("This model was quantized for the analysis engine (ppinfer quantize): run it "
                "with --engine analysis, or leave --engine out.") in result.stderr, result.stderr


@pytest.mark.parametrize("precision", [[], ["--precision", "fp32"]])
def test_a_paddle_executor_on_an_openvino_int8_model_names_openvino_in_one_message(
        int8_openvino, cat, precision):
    """Found by a stranger: the executors said 'use --engine analysis for int8' (which refuses
    these files too), and with --precision fp32 warned of a slow run that never happened."""
    result = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_openvino),
                                      "--engine", "executor-inference", *precision])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "Error: This model was quantized for the openvino engine (ppinfer quantize): run it with "
        "--engine openvino, or leave --engine out."], result.stderr


def test_engine_auto_at_a_float_precision_refuses_what_the_quantized_engine_refuses(
        int8_openvino, no_default_engine):
    """`ppinfer engines --precision fp32` promised openvino fp32 on an OpenVINO int8 IR, which
    predict then refused: both refuse now, naming the same reason."""
    engines = CliRunner().invoke(cli, ["engines", "--model", str(int8_openvino),
                                       "--precision", "fp32"])
    predict = CliRunner().invoke(cli, ["predict", "--model", str(int8_openvino),
                                       "--precision", "fp32"])
    assert engines.exit_code == predict.exit_code == 2, (engines.output, predict.output)
    assert "runs its int8 ops as int8, not fp32" in engines.stderr, engines.stderr
    assert "runs its int8 ops as int8, not fp32" in predict.stderr, predict.stderr


def test_bench_without_precision_measures_an_int8_model_at_int8(int8_analysis):
    rows = ppinfer.bench(int8_analysis, engine="analysis", iterations=2, warmup=0, rounds=1)
    assert [(r["engine"], r["precision"], r["status"]) for r in rows] == [
        ("analysis", "int8", "ok")]


def test_bench_naming_no_engine_runs_an_int8_model_on_its_engine_alone(
        int8_analysis, lite0, no_default_engine):
    """As predict does: the other installed engines are not tried (and skipped with advice to
    leave --engine out, which was already out); the float model beside it gets them all."""
    from ppinfer.engines.auto import installed_candidates

    rows = ppinfer.bench([int8_analysis, lite0], iterations=1, warmup=0, rounds=1)
    ran = [(Path(r["model"]).name, r["engine"], r["precision"], r["status"]) for r in rows]
    assert ran[0] == (int8_analysis.name, "analysis", "int8", "ok"), ran
    assert [row[1] for row in ran[1:]] == installed_candidates(), ran
    assert all(row[0] == lite0.name and row[3] == "ok" for row in ran[1:]), ran


def test_bench_on_an_int8_model_names_no_ratio_baseline_that_never_ran(int8_analysis):
    result = CliRunner().invoke(cli, ["bench", "--model", str(int8_analysis), "--engine",
                                      "analysis", "--iterations", "2", "--warmup", "0",
                                      "--rounds", "1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "no ratios: no analysis fp32 row ran (--baseline names one)" in result.stdout, \
        result.stdout
    assert "ratios to" not in result.stdout


def test_bench_puts_an_int8_model_beside_the_float_model_it_was_made_from(
        lite0, int8_analysis, views, tmp_path):
    """The int8 model runs no fp32 row of its own: its ratio and its agreement with fp32 come
    from the float model's rows on the same engine and the same inputs."""
    import json

    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, [
        "bench", "--model", str(lite0), "--model", str(int8_analysis), "--engine", "analysis",
        "--input", str(views), "-b", "2", "--iterations", "2", "--warmup", "0", "--rounds", "1",
        "--json", str(report)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "to analysis fp32 (int8 models: their float model's row" in result.stdout
    rows = {(Path(r["model"]).name, r["precision"]): r
            for r in json.loads(report.read_text())["results"]}
    float_row, int8_row = rows[(lite0.name, "fp32")], rows[(int8_analysis.name, "int8")]
    assert float_row["ratio_to_baseline"] == 1.0
    assert int8_row["ratio_to_baseline"] == pytest.approx(
        int8_row["throughput_ips"] / float_row["throughput_ips"], rel=1e-3)
    assert int8_row["top1_vs_fp32"] >= 0.95  # on all 72 views, calibrating ones included
    assert 0 < int8_row["score_diff_vs_fp32"] < 0.2


def test_a_float_model_with_precision_int8_on_engine_auto_still_says_quantize_first(
        lite0, no_default_engine):
    result = CliRunner().invoke(cli, ["predict", "--model", str(lite0), "--engine", "auto",
                                      "--precision", "int8"])
    assert result.exit_code == 2
    assert "int8 needs a quantized model (ppinfer quantize writes one" in result.stderr, \
        result.stderr
    assert "Measuring" not in result.stderr  # refused before announcing a measurement


def test_engine_all_on_an_openvino_int8_model_names_the_int8_reference_not_fp32(
        int8_openvino, cat):
    """A stranger's find: the column said 'vs openvino fp32' over the int8 run compared with
    itself, and the JSON's two analysis lines (fp32 reference, int8) said no precision."""
    table = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_openvino),
                                     "--engine", "all", "--precision", "int8"],
                               env={"COLUMNS": "120"})
    assert "openvino int8" in table.stdout and "openvino fp32" not in table.stdout, table.stdout
    lines = CliRunner().invoke(cli, ["predict", cat, "--model", str(int8_openvino),
                                     "--engine", "all", "--precision", "int8", "--json"])
    runs = [json.loads(line) for line in lines.stdout.splitlines()]
    assert sorted((r["engine"], r["precision"]) for r in runs if r["engine"] == "analysis") == [
        ("analysis", "fp32"), ("analysis", "int8")], runs
