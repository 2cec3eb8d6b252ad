"""--engine auto: measured once per model / precision / batch / threads, parity-checked against
analysis, cached, and shown by `ppinfer engines --model`. No speed is asserted: only that the
choice is the fastest of the figures it measured."""

from __future__ import annotations

import json
import os
import statistics

import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.config import RunConfig
from ppinfer.engines.auto import SCHEMA, cache_path, candidate_engines, choose_engine
from ppinfer.engines.auto_timing import Policy
from ppinfer.errors import ConfigError
from ppinfer.modelfiles.source import resolve_source

from .test_bench import export_tiny, tiny_checkpoint  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def tiny_legacy(tiny_checkpoint, tmp_path_factory):  # noqa: F811
    return export_tiny(tiny_checkpoint, tmp_path_factory.mktemp("auto") / "model", "legacy")


SHORT = Policy(budget_s=0.2, slice_s=0.01)  # a short measurement for tests


def _config(**kw):
    return RunConfig(device="cpu", cpu_threads=1, **kw)


def test_auto_picks_the_fastest_engine_that_agrees_and_caches_it(tiny_legacy, tmp_path):
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    choice = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    ok = [c for c in choice.candidates if c.status == "ok"]
    assert "analysis" in [c.engine for c in ok]
    fastest = max(ok, key=lambda c: c.images_per_s).engine
    assert choice.engine == fastest or (choice.near_tie and fastest in choice.tied)
    assert all(c.max_abs_diff <= 1e-4 for c in ok)
    assert choice.built is not None and choice.built.name == choice.engine
    assert not choice.cached and choice.path.is_file()
    skipped = {c.engine: c.reason for c in choice.candidates if c.status == "skipped"}
    assert "checkpoint" in skipped["executor-persistable"]

    again = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    assert again.cached and again.engine == choice.engine and again.built is None
    assert [c.images_per_s for c in again.candidates] == [c.images_per_s
                                                          for c in choice.candidates]
    fresh = choose_engine(source, _config(), cache_root=tmp_path, refresh=True, policy=SHORT)
    assert not fresh.cached


def test_the_cache_is_per_model_precision_batch_and_threads(tiny_legacy, tmp_path):
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    base = cache_path(source, _config().resolve(), tmp_path)
    assert cache_path(source, _config(batch_size=8).resolve(), tmp_path) != base
    assert cache_path(source, RunConfig(device="cpu", cpu_threads=2).resolve(), tmp_path) != base
    assert base.parent.parent == tmp_path / "auto"


def test_a_damaged_cache_file_is_measured_again(tiny_legacy, tmp_path):
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    path = cache_path(source, _config().resolve(), tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    choice = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    assert not choice.cached and json.loads(path.read_text())["engine"] == choice.engine


def test_a_cache_that_cannot_be_written_still_gives_the_measured_choice(tiny_legacy, tmp_path,
                                                                       monkeypatch):
    not_a_folder = tmp_path / "home"
    not_a_folder.write_text("a file where the cache folder should be")
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    choice = choose_engine(source, _config(), cache_root=not_a_folder, policy=SHORT)
    assert choice.built is not None and choice.built.name == choice.engine
    assert choice.path is None and not choice.cached
    assert "not cached: cannot write " in choice.describe()
    monkeypatch.setenv("PPINFER_HOME", str(not_a_folder))
    monkeypatch.setattr("ppinfer.engines.auto.POLICY", SHORT)
    args = ["engines", "--model", str(tiny_legacy), "--json", "--cpu-threads", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.strip().splitlines()[-1])
    assert doc["path"] is None and doc["not_cached"].startswith("cannot write ")
    assert doc["engine"] in [c["engine"] for c in doc["candidates"] if c["status"] == "ok"]


@pytest.mark.parametrize("edit", ["engine", "figure"])
def test_a_cache_file_edited_into_nonsense_is_measured_again(tiny_legacy, tmp_path, edit):
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    first = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    doc = json.loads(first.path.read_text())
    if edit == "engine":
        doc["engine"] = "no-such-engine"  # was: "Unknown engine" on every run
    else:
        doc["candidates"][0]["images_per_s"] = "fast"  # was: unexpected ValueError
    first.path.write_text(json.dumps(doc))
    again = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    assert not again.cached and again.engine in [c.engine for c in again.candidates]
    again.describe()
    assert json.loads(first.path.read_text())["engine"] == again.engine


def test_engines_that_cannot_take_part_say_why(tiny_legacy):
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    reasons = dict(candidate_engines(source, "bf16"))
    assert reasons["analysis"] is None
    assert "runs fp32, int8 only, not bf16" in reasons["onnxruntime"]


def test_auto_needs_an_exported_model(tiny_checkpoint):  # noqa: F811
    source = resolve_source(model=str(tiny_checkpoint), prefer="legacy")
    with pytest.raises(ConfigError, match="exported model"):
        choose_engine(source, _config())


def test_predict_with_engine_auto_says_which_engine_ran(tiny_legacy, photos, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("PPINFER_HOME", str(tmp_path))
    monkeypatch.setattr("ppinfer.engines.auto.POLICY", SHORT)
    args = ["predict", "-i", str(photos["chelsea"]), "--model", str(tiny_legacy), "--engine",
            "auto", "--cpu-threads", "1", "--json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["file_name"].endswith("chelsea.jpg")
    (line,) = [n for n in first.stderr.splitlines() if n.startswith("--engine auto")]
    assert "measured now" in line and len(line) <= 160, line
    second = CliRunner().invoke(cli, args)
    (cached,) = [n for n in second.stderr.splitlines() if n.startswith("--engine auto")]
    assert "cached 20" in cached and len(cached) <= 160, cached
    assert cached.split()[2] == line.split()[2]  # the same engine, named first
    assert second.stdout == first.stdout
    detailed = CliRunner().invoke(cli, ["--verbose", *args])
    assert "--engine auto chose" in detailed.stderr and "img/s" in detailed.stderr


def test_engines_command_shows_the_choice_and_figures(tiny_legacy, tmp_path, monkeypatch):
    monkeypatch.setenv("PPINFER_HOME", str(tmp_path))
    monkeypatch.setattr("ppinfer.engines.auto.POLICY", SHORT)
    result = CliRunner().invoke(cli, ["engines", "--model", str(tiny_legacy), "--cpu-threads",
                                      "1", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["engine"] in [c["engine"] for c in doc["candidates"] if c["status"] == "ok"]
    assert doc["precision"] == "fp32" and doc["cpu_threads"] == 1
    table = CliRunner().invoke(cli, ["engines", "--model", str(tiny_legacy), "--cpu-threads",
                                     "1"])
    assert "--engine auto chose" in table.stdout and "cached" in table.stdout
    listing = CliRunner().invoke(cli, ["engines", "--json"])
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    assert {"analysis", "openvino"} <= {r["name"] for r in rows}
    assert all(isinstance(r["installed"], bool) for r in rows)


def test_the_model_key_follows_the_files_content(tiny_legacy, tmp_path):
    import json as _json
    import shutil

    from ppinfer.engines.auto import model_key
    from ppinfer.modelfiles.formats import detect_directory

    model = tmp_path / "model"
    shutil.copytree(tiny_legacy, model)
    layout = detect_directory(model, prefer="legacy")
    first = model_key(layout, tmp_path / "auto")
    assert len(_json.loads((tmp_path / "auto" / "digests.json").read_text())) == 1
    assert model_key(layout, tmp_path / "auto") == first  # remembered
    with open(layout.params, "r+b") as fh:  # same size, other bytes
        head = fh.read(64)
        fh.seek(0)
        fh.write(bytes(255 - b for b in head))
    assert model_key(layout, tmp_path / "auto") != first


def test_the_cached_json_says_how_sure_the_choice_is(tiny_legacy, tmp_path):
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    choice = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    doc = json.loads(choice.path.read_text())
    assert doc["schema"] == SCHEMA == "ppinfer-auto/3"
    assert doc["engine"] == choice.engine and doc["rounds"] == choice.rounds >= 1
    assert doc["stop"] in ("decided", "budget", "max_rounds")
    assert isinstance(doc["near_tie"], bool) and doc["near_tie"] == bool(doc["tied"])
    assert set(doc["unsure"]) <= set(doc["tied"])
    assert doc["margin_over"] in [c["engine"] for c in doc["candidates"] if c["status"] == "ok"]
    assert isinstance(doc["margin"], float) and (doc["noise"] is None or doc["noise"] >= 0)
    assert doc["other_cores"] >= 0.0 and isinstance(doc["busy"], bool)  # Linux: /proc/stat
    assert doc["timed_s"] > 0.0
    for c in doc["candidates"]:
        if c["status"] == "ok":
            assert len(c["round_ms"]) == doc["rounds"] and c["warmup_runs"] >= 2
            assert c["spin_ms"] is None or c["spin_ms"] >= 0.0
            assert c["ms_per_batch"] == pytest.approx(statistics.median(c["round_ms"]))
    again = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    assert again.cached and (again.near_tie, again.tied, again.margin, again.margin_over,
                             again.rounds, again.stop) == (
        choice.near_tie, choice.tied, choice.margin, choice.margin_over, choice.rounds,
        choice.stop)
    assert choice.verdict() in choice.describe()


def test_an_old_schema_cache_file_is_measured_again_not_misread(tiny_legacy, tmp_path):
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    path = cache_path(source, _config().resolve(), tmp_path)
    path.parent.mkdir(parents=True)
    old = {"schema": "ppinfer-auto/1", "engine": "executor-persistable", "precision": "fp32",
           "batch_size": 1, "cpu_threads": 1, "measured_at": "2026-11-25T00:00:00+00:00",
           "candidates": [{"engine": "executor-persistable", "status": "ok", "reason": None,
                           "images_per_s": 1e9, "ms_per_batch": 1e-6, "build_s": 0.1,
                           "max_abs_diff": 0.0}]}
    path.write_text(json.dumps(old))
    choice = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    assert not choice.cached and choice.engine != "executor-persistable"
    doc = json.loads(path.read_text())
    assert doc["schema"] == SCHEMA and doc["engine"] == choice.engine and "near_tie" in doc
    doc.pop("near_tie")  # the current schema's name with a field missing: damaged, not misread
    path.write_text(json.dumps(doc))
    assert not choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT).cached


def test_a_choice_measured_on_a_busy_machine_or_in_a_near_tie_says_so():
    from ppinfer.engines.auto import Candidate, Choice

    def choice(**kw):
        return Choice("onnxruntime", "fp32", 1, 2, [Candidate("onnxruntime", "ok")],
                      "2026-11-26T00:00:00+00:00", rounds=5, margin=0.08, noise=0.02,
                      margin_over="openvino", **kw)

    clear = choice(other_cores=0.0)
    assert clear.verdict() == "clearly fastest (+8.0% ±2.0% vs openvino, 5 rounds)"
    busy = choice(other_cores=64.0 * (os.cpu_count() or 1))
    assert busy.busy and "busy: other processes used" in busy.verdict()
    assert busy.to_json_dict()["busy"] is True
    noisy = choice(near_tie=True, tied=["analysis"], unsure=["analysis"], other_cores=None)
    assert not noisy.busy
    assert noisy.verdict().startswith("near tie: within the noise of analysis (+8.0%")
    assert "--refresh measures again" in noisy.verdict()
    tie = choice(near_tie=True, tied=["openvino"], other_cores=0.0)
    tie.margin = -0.01
    assert tie.verdict() == ("near tie: within 3% of openvino (-1.0% ±2.0% vs openvino, 5 "
                             "rounds; a tie goes to analysis, then by name)")


# -- two programs of one model in one directory (ppinfer's exports on Paddle 3) ---------------

@pytest.fixture(scope="module")
def tiny_both(tiny_checkpoint, tmp_path_factory):  # noqa: F811
    from .test_bench import export_tiny

    out = export_tiny(tiny_checkpoint, tmp_path_factory.mktemp("auto-both") / "model")
    if not (out / "inference.json").is_file() or not (out / "inference.pdmodel").is_file():
        pytest.skip("this Paddle writes one program only (Paddle 2.6: legacy)")
    return out


def test_auto_times_analysis_on_both_programs_and_the_choice_names_the_winner(
        tiny_both, tmp_path):
    source = resolve_source(model=str(tiny_both), prefer="legacy")
    choice = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    by_label = {c.label: c for c in choice.candidates}
    assert by_label["analysis"].program is None and by_label["analysis:pir"].program == "pir"
    assert by_label["analysis:pir"].status == "ok", by_label["analysis:pir"].reason
    assert by_label["analysis:pir"].max_abs_diff <= 1e-4  # the same model, either program
    winner = by_label[choice.label]
    assert winner.images_per_s == max(c.images_per_s for c in choice.candidates
                                      if c.status == "ok" and c.images_per_s) or choice.near_tie
    if choice.built is not None:  # the measured winner is built on its own program
        assert choice.built.source.layout.ir == (choice.program or "legacy")
    cached = choose_engine(source, _config(), cache_root=tmp_path)
    assert cached.cached and (cached.engine, cached.program) == (choice.engine, choice.program)


def test_a_cached_choice_of_the_pir_program_runs_the_pir_program(tiny_both, tmp_path,
                                                                  monkeypatch):
    import ppinfer
    from ppinfer.engines.auto import engine_for

    monkeypatch.setenv("PPINFER_HOME", str(tmp_path))
    source = resolve_source(model=str(tiny_both), prefer="legacy")
    config = _config().resolve()
    choice = choose_engine(source, config, policy=SHORT)
    doc = json.loads(choice.path.read_text())
    doc.update(engine="analysis", program="pir")  # as if the PIR program had measured faster
    choice.path.write_text(json.dumps(doc))
    cached = choose_engine(source, config)
    assert cached.cached and cached.label == "analysis:pir"
    assert engine_for(cached, source, config).source.layout.kind == "pir"
    with ppinfer.load(str(tiny_both), engine="auto", cpu_threads=1, device="cpu") as p:
        assert p.engine.source.layout.kind == "pir"
        assert p.predict(str(ppinfer_sample()))[0].error is None


def ppinfer_sample():
    from ppinfer.pipeline.sample import sample_image_path

    return sample_image_path()
