"""Output for people (issue 13): bench's table at 80 and 120 columns, `ppinfer models` at 80,
`--engine all` over several images, messages that name the files written, one input order, and
percentages that agree with their own threshold."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from ppinfer.bench.report import notes, percent_over, print_table
from ppinfer.cli import cli
from ppinfer.pipeline.inputs import expand_inputs

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

ENGINES = "analysis,executor-inference"


@pytest.fixture(scope="module")
def report():
    """A real (short) bench of the built-in model: two engines, two batch sizes."""
    from ppinfer.api.benchmarking import bench_report

    return bench_report(engine=ENGINES, batch_size=[1, 2], iterations=2, warmup=0)


def printed(report, width: int) -> list[str]:
    out = io.StringIO()
    print_table(report, Console(file=out, width=width))
    return out.getvalue().splitlines()


def table_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith(("warning:", "skipped:", "failed:"))]


def assert_names_whole(lines: list[str], width: int) -> None:
    text = "\n".join(lines)
    assert "…" not in text
    assert all(len(line) <= width for line in table_lines(lines)), text
    assert "EfficientNet_lite0" in text
    for engine in ENGINES.split(","):
        assert f" {engine} " in text or f"\n{engine} " in text, text


def test_bench_table_at_80_columns_is_blocks_with_every_name_whole(report):
    lines = printed(report, 80)
    assert_names_whole(lines, 80)
    text = "\n".join(lines)
    assert "speed (latency per batch)" in text and "startup and memory" in text
    assert "fp32 b2 t" in text  # the configuration, whole


def test_bench_table_at_120_columns_is_one_full_table(report):
    lines = printed(report, 120)
    assert_names_whole(lines, 120)
    text = "\n".join(lines)
    assert "speed (latency per batch)" not in text  # not the narrow blocks
    header = " ".join(lines[:6])
    for column in ("build", "first", "p50", "p99", "img/s", "RSS"):
        assert column in header


@pytest.mark.parametrize("width", [80, 60])
def test_bench_table_never_wraps_a_cell(report, width):
    """A wrapped cell doubles its row: below each table's rule, every line is a configuration
    (starts with an engine name), and nothing is wider than the terminal."""
    lines = table_lines(printed(report, width))
    engines = {r.case.engine for r in report.results}
    below_rule = False
    for line in lines:
        assert len(line) <= width, line
        if "───" in line:
            below_rule = True
        elif not line.strip():
            below_rule = False
        elif below_rule:
            assert line.split()[0] in engines, f"a wrapped cell at {width} columns: {line!r}"


def test_bench_with_columns_80_in_a_pipe_fits(tmp_path):
    env = {**os.environ, "COLUMNS": "80"}
    run = subprocess.run(
        [sys.executable, "-m", "ppinfer", "bench", "--engine", ENGINES, "--iterations", "2",
         "--warmup", "0", "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, env=env, check=True)
    assert_names_whole(run.stdout.splitlines(), 80)
    assert f"Wrote {tmp_path / 'r.json'}\n" in run.stderr
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert {r["engine"] for r in rows} == set(ENGINES.split(","))  # --json: every figure


def test_models_at_80_columns_cuts_no_name_or_figure_and_a_pipe_gets_every_column():
    env = {**os.environ, "COLUMNS": "80"}
    run = subprocess.run([sys.executable, "-m", "ppinfer", "models"], capture_output=True,
                         text=True, env=env, check=True)
    assert "…" not in run.stdout
    assert "SwinTransformer_large_patch4_window12_384" in run.stdout  # the longest name
    assert "196.74M" in run.stdout and "3x384x384" in run.stdout
    assert max(map(len, run.stdout.splitlines())) <= 80
    piped = subprocess.run([sys.executable, "-m", "ppinfer", "models"], capture_output=True,
                           text=True, env={k: v for k, v in env.items() if k != "COLUMNS"},
                           check=True)
    assert "…" not in piped.stdout and "swin_transformer" in piped.stdout
    assert "efficientnet" in piped.stdout and "mobilenet_v3" in piped.stdout


def test_plot_message_names_the_file_written(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(cli, ["bench", "--iterations", "1", "--warmup", "0",
                                   "--plot", "rplot"])
    assert run.exit_code == 0, run.output
    assert "Wrote rplot.png\n" in run.stderr
    assert Path("rplot.png").read_bytes()[:4] == b"\x89PNG"
    run = CliRunner().invoke(cli, ["bench", "--iterations", "1", "--plot", "r.nope"])
    assert run.exit_code == 2 and "matplotlib cannot write .nope files" in run.stderr
    assert "[1/1]" not in run.stderr  # refused before anything was measured


def test_engine_all_over_several_images_says_how_many_agree(photos):
    run = CliRunner().invoke(cli, ["predict", "--engine", "all", "-i",
                                   str(photos["chelsea"].parent)], env={"COLUMNS": "120"})
    assert run.exit_code == 0, run.output
    assert "top-1 same as analysis" in run.stdout
    assert "3 of 3 images" in run.stdout
    assert "distinct" not in run.stdout
    run = CliRunner().invoke(cli, ["predict", "--engine", "all", "--json", "-i",
                                   str(photos["chelsea"].parent)])
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    ran = [r for r in rows if "skipped" not in r]
    assert ran and all(r["images"] == 3 and r["top1_agree"] == 3 for r in ran)


def test_engine_all_at_60_columns_is_lines_with_every_engine_s_top1_and_figures(photos):
    run = CliRunner().invoke(cli, ["predict", "--engine", "all", "-i", str(photos["chelsea"])],
                             terminal_width=60, env={"COLUMNS": "60"})
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert max(map(len, lines)) <= 60 and "…" not in run.stdout
    engines = [line for line in lines if ": top-1 " in line]
    assert engines and engines[0].startswith("analysis fp32: top-1 ")
    for line in engines:  # the engine's figures on the next line, whole
        figures = lines[lines.index(line) + 1]
        assert figures.startswith("  build ") and " ms/img warm, |Δ| " in figures, figures
    assert "largest score difference from analysis fp32" in run.stdout


def test_predict_at_40_columns_gives_each_image_its_lines_with_labels_whole(photos):
    run = CliRunner().invoke(cli, ["predict", str(photos["coffee"]), str(photos["chelsea"])],
                             terminal_width=40, env={"COLUMNS": "40"})
    assert run.exit_code == 0, run.output
    lines = run.stdout.splitlines()
    assert "…" not in run.stdout and max(map(len, lines)) <= 40
    assert str(photos["coffee"]) in run.stdout.replace("\n", "")  # a long path folds, whole
    classes = [line for line in lines if line.startswith("  ") and line[2:6].strip().isdigit()]
    assert len(classes) == 10, lines  # five a photo
    assert "tiger cat" in run.stdout and "espresso" in run.stdout


def test_engines_at_60_columns_is_a_block_per_engine_with_nothing_cut():
    env = {**os.environ, "COLUMNS": "60"}
    run = subprocess.run([sys.executable, "-m", "ppinfer", "engines"], capture_output=True,
                         text=True, env=env, check=True)
    lines = run.stdout.splitlines()
    assert "…" not in run.stdout and max(map(len, lines)) <= 60
    assert not [line for line in lines if line != line.rstrip()]  # no padding to the edge
    names = [line for line in lines if not line.startswith(" ")]
    assert names[:2] == ["analysis", "executor-inference"], names
    assert "Paddle Inference predictor: IR passes, oneDNN, TensorRT," in run.stdout


def test_a_glob_and_a_directory_walk_list_inputs_in_one_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("p/b.jpg", "p/a/x.jpg", "p/a.b/y.jpg", "p/c.png", "p/a/z/w.jpg"):
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        Path(name).write_bytes(b"x")
    walk = [i.path for i in expand_inputs(["p"])]
    assert walk == ["p/b.jpg", "p/c.png", "p/a/x.jpg", "p/a/z/w.jpg", "p/a.b/y.jpg"]
    assert [i.path for i in expand_inputs(["p/**/*"])] == walk
    assert [i.path for i in expand_inputs(["p/*"])] == walk


@pytest.mark.parametrize(("cv", "shown"), [(0.1004, "10.04%"), (0.104, "10.4%"),
                                           (0.35, "35%"), (0.100001, "10.0001%")])
def test_a_percentage_over_its_threshold_is_shown_over_it(cv, shown):
    assert percent_over(cv, 0.10) == shown


def test_unstable_warning_does_not_contradict_itself(report):
    from dataclasses import replace

    from ppinfer.bench.measure import Phase

    ok = [r for r in report.results if r.status == "ok"]
    for other in ok[1:]:  # only one configuration unstable: its own line (others fold)
        flat = other.measurement.engine.latencies[0]
        other.measurement.engine = replace(other.measurement.engine, latencies=[flat, flat])
    r = ok[0]
    steady = r.measurement.engine.latencies[0]
    # latencies whose coefficient of variation is just over 10% (10.0...%)
    r.measurement.engine = replace(r.measurement.engine,
                                   latencies=[steady * 0.8999, steady * 1.1001])
    assert isinstance(r.measurement.engine, Phase)
    (line,) = [n for n in notes(report) if r.case.describe() in n and "varied" in n]
    assert "latency varied by 10.01% (over 10%)" in line


def test_unstable_warnings_are_folded_into_one_line_with_a_count(report):
    from dataclasses import replace

    ok = [r for r in report.results if r.status == "ok"]
    assert len(ok) >= 2
    for r in ok:
        steady = r.measurement.engine.latencies[0]
        r.measurement.engine = replace(r.measurement.engine,
                                       latencies=[steady * 0.5, steady * 1.5])
    (line,) = [n for n in notes(report) if "varied" in n]
    assert f"in {len(ok)} of {len(ok)} configurations" in line
