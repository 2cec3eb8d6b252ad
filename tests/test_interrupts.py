"""Nothing is lost when a run is interrupted (issue 7, part 3), with real signals to real
``python -m ppinfer`` processes.

- Ctrl-C (SIGINT) during ``predict --save FILE``: every line already in FILE is complete JSON.
- SIGKILL during ``export --force`` over an existing model, at random points: the output
  directory holds the old model or the new one, whole, and nothing half-written is visible.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ppinfer.checkpoints import sha256
from ppinfer.cli import cli
from ppinfer.modelfiles.formats import detect_directory, verify_layout
from ppinfer.modelfiles.modelcard import read_card

from .test_faults import ARCH, CLASSES, NATIVE, is_glog, params_file, small_models

EXPECTED_FILES = {
    "pir": {"inference.json", "inference.pdmodel", "inference.pdiparams", "inference.yml"},
    "legacy": {"inference.pdmodel", "inference.pdiparams", "inference.yml"},
}[NATIVE]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory)


def ppinfer_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ppinfer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``proc`` ends first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.002)
    raise AssertionError("timed out waiting for the process")


# --- Ctrl-C during predict --------------------------------------------------------------------


def test_ctrl_c_keeps_every_finished_line(models, tmp_path):
    images = tmp_path / "many"
    images.mkdir()
    rng = np.random.default_rng(1)
    count = 400
    for i in range(count):
        cv2.imwrite(str(images / f"img{i:03d}.png"), rng.integers(0, 256, (24, 32, 3), np.uint8))
    save = tmp_path / "results.jsonl"
    proc = ppinfer_process("predict", "-i", str(images), "--model", str(models.model),
                           "--save", str(save), "--json")
    try:
        started = wait_for(lambda: save.exists() and save.stat().st_size > 0, proc)
        assert started, proc.communicate()
        time.sleep(random.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert [line for line in err.splitlines() if line and not is_glog(line)][-1] == "Interrupted."
    text = save.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]  # each line complete JSON
    assert 1 <= len(lines) < count, "the run finished before Ctrl-C: nothing was tested"
    assert [line["file_name"] for line in lines] == [
        str(images / f"img{i:03d}.png") for i in range(len(lines))]
    assert all(len(line["class_ids"]) == CLASSES for line in lines)
    # stdout carried the same lines (a line goes to FILE first, so FILE may be one ahead)
    printed, saved = out.splitlines(), text.splitlines()
    assert len(saved) - 1 <= len(printed) <= len(saved)
    assert printed == saved[: len(printed)]


# --- SIGKILL during export ----------------------------------------------------------------------


def model_state(out: Path, shas: dict[str, str], params: dict[str, bytes]) -> str:
    """Which complete model ``out`` holds ('a' or 'b'); fails if it is partial or a mix."""
    assert {p.name for p in out.iterdir()} == EXPECTED_FILES
    verify_layout(detect_directory(out, prefer=NATIVE))  # program and parameters fit
    digest = read_card(out / "inference.yml").provenance["checkpoint_sha256"]
    (which,) = [k for k, v in shas.items() if v == digest]
    if which in params:
        assert params_file(out).read_bytes() == params[which], "card and parameters disagree"
    return which


@pytest.mark.paddle3_only  # the publishing is plain file operations: tests/conftest.py
def test_killed_export_leaves_the_old_model_or_the_new_one(models, tmp_path):
    root = tmp_path / "models"
    root.mkdir()
    out = root / "out"
    shutil.copytree(models.model, out)  # the old model, exported from checkpoint a
    ckpts = {"a": models.ckpt, "b": models.ckpt_b}
    shas = {k: sha256(v) for k, v in ckpts.items()}
    params = {"a": params_file(out).read_bytes()}

    def export(which: str) -> subprocess.Popen:
        return ppinfer_process("export", "-m", ARCH, "-p", str(ckpts[which]), "-o", str(out),
                               "--class-num", str(CLASSES), "--force")

    def temp_dir_of(proc) -> bool:
        return any(p.name.startswith(f".out.tmp-{proc.pid}-") for p in root.iterdir())

    # One export to the end: the reference for b, and how long the temporary directory lives.
    proc = export("b")
    assert wait_for(lambda: temp_dir_of(proc), proc)
    writing_from = time.monotonic()
    assert proc.wait(timeout=120) == 0, proc.communicate()
    writing = time.monotonic() - writing_from
    assert model_state(out, shas, {}) == "b"
    params["b"] = params_file(out).read_bytes()
    assert params["a"] != params["b"]

    rng = random.Random()
    kills = []
    for _ in range(5):
        before = model_state(out, shas, params)
        target = "a" if before == "b" else "b"
        proc = export(target)
        try:
            wait_for(lambda proc=proc: temp_dir_of(proc), proc)
            delay = rng.uniform(0.0, writing * 1.1)  # anywhere while it writes, or just after
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
        finally:
            proc.kill()
        after = model_state(out, shas, params)
        kills.append((round(delay, 3), before, after))
        assert after in (before, target), kills
        assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == ["out"], kills

    # The next export tidies what the killed ones left hidden.
    result = CliRunner().invoke(cli, ["export", "-m", ARCH, "-p", str(ckpts["a"]), "-o",
                                      str(out), "--class-num", str(CLASSES), "--force",
                                      "--no-validate"])
    assert result.exit_code == 0, result.output
    assert model_state(out, shas, params) == "a"
    assert sorted(p.name for p in root.iterdir()) == ["out"], kills


def test_export_puts_a_model_in_place_by_atomic_exchange(models, tmp_path, monkeypatch):
    """Where the OS has renameat2(RENAME_EXCHANGE) the old directory is never missing: the swap
    is one system call, and no plain rename is used."""
    import ppinfer.io.publish as export_module

    probe_a, probe_b = tmp_path / "pa", tmp_path / "pb"
    probe_a.mkdir()
    probe_b.mkdir()
    if not export_module._exchange(probe_a, probe_b):
        pytest.skip("this OS or filesystem has no atomic directory exchange")
    out = shutil.copytree(models.model, tmp_path / "out")
    new = shutil.copytree(models.model, tmp_path / ".out.tmp-new")
    (new / "marker").write_text("new")

    def no_rename(*args):
        raise AssertionError("a plain rename would leave a moment without a model")

    monkeypatch.setattr(export_module.os, "replace", no_rename)
    export_module.swap_into_place(new, out)
    assert (out / "marker").read_text() == "new"
    assert not new.exists()


KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
import ppinfer.io.publish as ex

ex._exchange = lambda a, b: False  # as on an OS without renameat2
real_replace = os.replace
def replace(src, dst):
    real_replace(src, dst)
    os.kill(os.getpid(), signal.SIGKILL)  # old model moved aside, new one not yet in place
os.replace = replace
ex.swap_into_place(Path(sys.argv[1]), Path(sys.argv[2]))
"""


def test_export_killed_between_the_fallback_renames_gets_the_old_model_back(models, tmp_path):
    out = shutil.copytree(models.model, tmp_path / "out")
    old_params = params_file(out).read_bytes()
    new = shutil.copytree(models.model, tmp_path / ".out.new")
    proc = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES, str(new), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()  # the moment the fallback cannot avoid
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.old-")]

    # The next export to the same place puts the old model back before anything else.
    result = CliRunner().invoke(cli, ["export", "-m", ARCH, "-p", str(models.ckpt_b), "-o",
                                      str(out), "--class-num", str(CLASSES)])
    assert result.exit_code == 2
    assert "is not empty: pass --force to replace it." in result.output
    assert params_file(out).read_bytes() == old_params
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.old-")]
