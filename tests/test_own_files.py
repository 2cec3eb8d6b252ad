"""Files ppinfer writes for itself and reads back (issue 23, item 2): the ``--engine auto``
cache, ``auto/digests.json``, the built-in model's export and the ONNX conversion record.
Whatever is found there (valid JSON of the wrong kinds, NaN, 200,000 nested brackets, a
digest that is a path) is treated as absent and written again, never fatal; nothing is
written through a planted link."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from ppinfer.cli import cli
from ppinfer.engines.auto import cache_path, choose_engine
from ppinfer.engines.auto_cache import SCHEMA, model_key, read_choice, read_digests
from ppinfer.io.own_files import read_json
from ppinfer.modelfiles.source import resolve_source

from .test_autoselect import SHORT, _config, tiny_legacy  # noqa: F401  (fixtures)
from .test_bench import tiny_checkpoint  # noqa: F401  (a fixture)

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

NESTED = "[" * 200_000 + "]" * 200_000  # 400 kB: under the size cap, past Python's stack


@pytest.fixture(scope="module")
def measured(tiny_legacy, tmp_path_factory):  # noqa: F811
    """A real cache file (its path and its text), measured once for the module."""
    root = tmp_path_factory.mktemp("auto-cache")
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    choice = choose_engine(source, _config(), cache_root=root, policy=SHORT)
    return choice.path, choice.path.read_text()


def _damaged(text: str, damage: str) -> str:
    doc = json.loads(text)
    if damage == "empty-list":
        return "[]"
    if damage == "nested-brackets":
        return NESTED
    if damage == "infinite-rounds":
        doc["rounds"] = float("inf")  # json.dumps writes Infinity
    elif damage == "nan-margin":
        doc["margin"] = float("nan")  # was printed as "+nan%"
    elif damage == "null-measured-at":
        doc["measured_at"] = None  # was printed as "cached None"
    elif damage == "huge-integer-figure":
        doc["candidates"][0]["images_per_s"] = 10 ** 400  # float() overflows
    elif damage == "batch-of-another-run":
        doc["batch_size"] = 8
    elif damage == "markup-in-an-engine-name":
        doc["candidates"][-1]["engine"] = "[bold red]x"  # shown in `ppinfer engines`' table
    return json.dumps(doc)


CACHE_DAMAGES = ["empty-list", "nested-brackets", "infinite-rounds", "nan-margin",
                 "null-measured-at", "huge-integer-figure", "batch-of-another-run",
                 "markup-in-an-engine-name"]


@pytest.mark.parametrize("damage", CACHE_DAMAGES)
def test_a_damaged_auto_cache_file_reads_as_absent(measured, tmp_path, damage):
    path, text = measured
    assert read_choice(path, _config().resolve()) is not None  # the real file is read
    damaged = tmp_path / path.name
    damaged.write_text(_damaged(text, damage))
    assert read_choice(damaged, _config().resolve()) is None


def test_a_cached_choice_of_an_engine_no_longer_installed_is_measured_again(
        tiny_legacy, tmp_path):  # noqa: F811
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    first = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    doc = json.loads(first.path.read_text())
    for c in doc["candidates"]:
        if c["engine"] == doc["engine"]:
            c["engine"] = "uninstalled-plugin"  # was: "Unknown engine" on every run
    doc["engine"] = "uninstalled-plugin"
    first.path.write_text(json.dumps(doc))
    again = choose_engine(source, _config(), cache_root=tmp_path, policy=SHORT)
    assert not again.cached and again.engine != "uninstalled-plugin"


def test_predict_with_a_damaged_auto_cache_measures_again_and_rewrites_it(
        tiny_legacy, photos, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PPINFER_HOME", str(tmp_path))
    monkeypatch.setattr("ppinfer.engines.auto.POLICY", SHORT)
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    path = cache_path(source, _config().resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NESTED)  # was: unexpected RecursionError on every run
    (tmp_path / "auto" / "digests.json").write_text("[" * 100_000)
    args = ["predict", "-i", str(photos["chelsea"]), "--model", str(tiny_legacy), "--engine",
            "auto", "--cpu-threads", "1", "--json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "measured" in first.stderr and "unexpected" not in first.stderr
    assert read_choice(path, _config().resolve()) is not None
    assert read_digests(tmp_path / "auto" / "digests.json")  # rewritten whole
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and "cached" in second.stderr


def test_load_with_engine_auto_survives_a_cache_file_holding_a_list(
        tiny_legacy, tmp_path, monkeypatch):  # noqa: F811
    import ppinfer

    monkeypatch.setenv("PPINFER_HOME", str(tmp_path))
    monkeypatch.setattr("ppinfer.engines.auto.POLICY", SHORT)
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    path = cache_path(source, _config().resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[]")  # was: unexpected AttributeError ('list' has no attribute 'get')
    with ppinfer.load(str(tiny_legacy), engine="auto", cpu_threads=1, device="cpu") as p:
        assert p.predict(str(ppinfer_photo()))[0].error is None
    assert json.loads(path.read_text())["schema"] == SCHEMA


def ppinfer_photo():
    from ppinfer.pipeline.sample import sample_image_path

    return sample_image_path()


@pytest.mark.parametrize("damage", ["empty-list", "nested-brackets", "infinite-value",
                                    "nan-value", "short-digest"])
def test_a_damaged_digests_file_is_hashed_again(tiny_legacy, tmp_path, damage):  # noqa: F811
    from ppinfer.modelfiles.formats import detect_directory

    layout = detect_directory(tiny_legacy, prefer="legacy")
    base = tmp_path / "auto"
    digest = model_key(layout, base)
    index = base / "digests.json"
    stamp = next(iter(json.loads(index.read_text())))
    index.write_text({"empty-list": "[]", "nested-brackets": NESTED,
                      "infinite-value": json.dumps({stamp: float("inf")}),
                      "nan-value": json.dumps({stamp: float("nan")}),
                      "short-digest": json.dumps({stamp: "abc"})}[damage])
    assert model_key(layout, base) == digest
    assert json.loads(index.read_text()) == {stamp: digest}


def test_a_digest_that_is_a_path_never_leaves_ppinfer_home(tiny_legacy, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    source = resolve_source(model=str(tiny_legacy), prefer="legacy")
    inside = cache_path(source, _config().resolve(), home)
    index = home / "auto" / "digests.json"
    stamp = next(iter(json.loads(index.read_text())))
    # 32 characters, as a digest is: an absolute path, and one that climbs out of the cache
    for planted in ("/tmp/ppinfer-planted-digest-abcd", "../../outside-of-ppinfer-home-xy"):
        assert len(planted) == 32
        index.write_text(json.dumps({stamp: planted}))  # was: used as the folder's name
        assert cache_path(source, _config().resolve(), home) == inside


def test_the_cache_writes_no_file_through_a_planted_link(tiny_legacy, tmp_path):  # noqa: F811
    from ppinfer.modelfiles.formats import detect_directory

    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    base = tmp_path / "auto"
    base.mkdir()
    # The name the temporary file had (.digests.json.<pid>) and the file itself, as links:
    os.symlink(victim, base / f".digests.json.{os.getpid()}")
    os.symlink(victim, base / "digests.json")
    model_key(detect_directory(tiny_legacy, prefer="legacy"), base)
    assert victim.read_text() == "the user's file\n"
    assert not (base / "digests.json").is_symlink() and read_digests(base / "digests.json")


def test_own_json_is_read_with_bounds():
    assert read_json("/nonexistent/file.json") is None
    assert read_json("/dev/null") is None  # not a regular file: never opened


CONVERSION_DAMAGES = ["empty-list", "nested-brackets", "nan-difference", "missing-record",
                      "model-cut-short"]


@pytest.mark.parametrize("damage", CONVERSION_DAMAGES)
def test_a_damaged_onnx_conversion_is_converted_again(tiny_legacy, tmp_path,  # noqa: F811
                                                      damage):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("paddle2onnx")
    from ppinfer.engines.onnxruntime import onnx_model_path
    from ppinfer.modelfiles.formats import detect_directory

    layout = detect_directory(tiny_legacy, prefer="legacy")
    model = onnx_model_path(layout, cache_root=tmp_path)
    record = model.parent / "conversion.json"
    good = json.loads(record.read_text())
    assert good["onnx_bytes"] == model.stat().st_size
    if damage == "model-cut-short":
        with open(model, "r+b") as fh:  # was: ONNX Runtime failed on every later run
            fh.truncate(100)
    elif damage == "missing-record":
        record.unlink()
    else:
        record.write_text({"empty-list": "[]", "nested-brackets": NESTED,
                           "nan-difference": json.dumps(
                               {**good, "max_abs_diff_vs_paddle": float("nan")})}[damage])
    again = onnx_model_path(layout, cache_root=tmp_path)
    assert again == model and again.stat().st_size == good["onnx_bytes"]
    assert read_json(record)["onnx_mtime_ns"] == again.stat().st_mtime_ns


@pytest.mark.parametrize("damage", ["card-holding-a-list", "card-nested-200000-deep",
                                    "card-missing-a-label", "a-file-in-its-place"])
def test_a_damaged_built_in_model_export_is_exported_again(tmp_path, monkeypatch, damage):
    import shutil

    from ppinfer.api.builtin_model import default_model_dir
    from ppinfer.modelfiles.modelcard import read_card

    cached = default_model_dir()  # the tests' own cache: exported once
    home = tmp_path / "home"
    target = home / "models" / cached.name
    shutil.copytree(cached, target)
    card = target / "inference.yml"
    if damage == "card-holding-a-list":
        card.write_text("[]\n")  # was: "does not hold a mapping: fix or delete it", every run
    elif damage == "card-nested-200000-deep":
        card.write_text(NESTED)
    elif damage == "card-missing-a-label":
        card.write_text(card.read_text().replace("- goldfish, Carassius auratus\n", "", 1))
    else:
        shutil.rmtree(target)
        target.write_text("not a model\n")  # was: "... is a file: choose a directory for -o"
    monkeypatch.setenv("PPINFER_HOME", str(home))
    assert default_model_dir() == target
    assert len(read_card(target / "inference.yml").labels) == 1000
    assert [p.name for p in (home / "models").iterdir()] == [cached.name]  # nothing left aside
