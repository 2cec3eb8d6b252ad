"""Without --engine, predict and bench take the fastest verified path (issue 22): `auto` where a
peer of analysis is installed and the model is an exported one, analysis otherwise;
$PPINFER_ENGINE sets another default; --engine analysis still forces Paddle."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.engines.auto import default_engine, installed_candidates
from ppinfer.modelfiles.source import resolve_source

from .test_autoselect import SHORT, tiny_legacy  # noqa: F401  (a fixture)
from .test_bench import tiny_checkpoint  # noqa: F401  (a fixture)


@pytest.fixture
def no_default(monkeypatch, tmp_path):
    monkeypatch.delenv("PPINFER_ENGINE", raising=False)
    monkeypatch.setenv("PPINFER_HOME", str(tmp_path))
    monkeypatch.setattr("ppinfer.engines.auto.POLICY", SHORT)


def test_an_exported_model_defaults_to_auto_where_peers_are_installed(tiny_legacy, no_default):  # noqa: F811
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    expected = "auto" if len(installed_candidates()) > 1 else "analysis"
    assert default_engine(source) == expected


def test_a_checkpoint_defaults_to_analysis(tiny_checkpoint, no_default):  # noqa: F811
    source = resolve_source(model=str(tiny_checkpoint), prefer="legacy")
    assert default_engine(source) == "analysis"


def test_ppinfer_engine_sets_the_default(tiny_legacy, no_default, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PPINFER_ENGINE", "openvino")
    assert default_engine(resolve_source(model=str(tiny_legacy))) == "openvino"


def test_predict_without_engine_says_which_ran_and_analysis_still_forces_paddle(
        tiny_legacy, photos, no_default):  # noqa: F811
    if len(installed_candidates()) < 2:
        pytest.skip("only analysis is installed: it is the default")
    args = ["predict", str(photos["chelsea"]), "--model", str(tiny_legacy), "--json"]
    default = CliRunner().invoke(cli, args)
    assert default.exit_code == 0, default.output
    (line,) = [n for n in default.stderr.splitlines() if n.startswith("--engine auto: ")]
    assert line.split()[2] in installed_candidates()
    forced = CliRunner().invoke(cli, [*args, "--engine", "analysis"])
    assert not any(n.startswith("--engine auto") for n in forced.stderr.splitlines())
    a, b = json.loads(default.stdout), json.loads(forced.stdout)
    assert a["class_ids"][0] == b["class_ids"][0]


def test_bench_without_engine_measures_the_engines_auto_chooses_among(tiny_legacy, no_default):  # noqa: F811
    from ppinfer.api.benchmarking import bench_report

    report = bench_report(str(tiny_legacy), iterations=2, warmup=0)
    assert [r.case.engine for r in report.results] == installed_candidates()


def test_engines_refresh_without_a_model_measures_the_builtin_models_choice_again(
        monkeypatch, tmp_path):
    from click.testing import CliRunner

    from ppinfer.cli import cli

    monkeypatch.setattr("ppinfer.engines.auto.POLICY",
                        __import__("ppinfer.engines.auto_timing", fromlist=["Policy"]).Policy(
                            budget_s=0.2, slice_s=0.01))
    result = CliRunner().invoke(cli, ["engines", "--refresh", "--json", "--cpu-threads", "1"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["cached"] is False and doc["engine"] in [c["engine"] for c in doc["candidates"]]
