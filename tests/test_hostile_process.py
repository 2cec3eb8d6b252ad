"""Issue 11, processes and outputs: Ctrl-C, closed pipes, full disks, paths that must not be
written or deleted, options that could exhaust the machine.

Real ``python -m ppinfer`` processes, real signals (SIGINT), real pipes, ``/dev/full`` and a
small tmpfs (mounted where root allows) for a full disk.
"""

from __future__ import annotations

import contextlib
import json
import os
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
from skimage import data as skdata

from ppinfer.cli import cli
from ppinfer.modelfiles.formats import detect_directory, verify_layout
from ppinfer.modelfiles.modelcard import read_card

from .test_faults import (
    ARCH,
    CLASSES,
    NATIVE,
    assert_one_sentence_error,
    is_glog,
    json_lines,
    ppinfer_without_root_reads,
    run_ppinfer,
    small_models,
    stderr_lines,
)

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

PPINFER = [sys.executable, "-m", "ppinfer"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Twenty small JPEGs (distinct files: duplicates would be dropped)."""
    root = tmp_path_factory.mktemp("hostile-photos")
    cat = cv2.cvtColor(skdata.chelsea(), cv2.COLOR_RGB2BGR)[::4, ::4]
    for i in range(20):
        cv2.imwrite(str(root / f"cat{i:02d}.jpg"), cat)
    return root


def spawn(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([*PPINFER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def wait_until(condition, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"process ended or timed out first: {proc.communicate()}")
        time.sleep(0.01)


def last_line(stderr: str) -> str:
    return [line for line in stderr.splitlines() if line.strip() and not is_glog(line)][-1]


# --- Ctrl-C ----------------------------------------------------------------------------------

STUCK_WORKER = """
import sys, threading
from pathlib import Path
import ppinfer.predict

MARKER = Path(sys.argv[1])

def stuck(path, **_kw):  # a read that never returns, as open() on a FIFO did
    MARKER.touch()
    threading.Event().wait()

ppinfer.predict.load_image = stuck
sys.argv = ["ppinfer", *sys.argv[2:]]
from ppinfer.cli.main import main
main()
"""


def test_ctrl_c_ends_promptly_while_a_worker_thread_is_stuck(models, photos, tmp_path):
    marker = tmp_path / "stuck"
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_WORKER, str(marker), "predict", "-i", str(photos),
         "--model", str(models.model)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(marker.exists, proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # the old behaviour: never returned
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert last_line(err) == "Interrupted."


def test_ctrl_c_during_export_force_says_interrupted_and_keeps_the_old_model(models, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(models.model, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rng = random.Random(11)
    outcomes = []
    for _ in range(6):
        proc = spawn("export", "-m", ARCH, "-p", str(models.ckpt_b), "-o", str(out),
                     "--class-num", str(CLASSES), "--force")
        # Anywhere from the command line's import to the validation run: a whole export takes
        # about 2 s on a quiet machine here, more under load.
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        outcomes.append(proc.returncode)
        if proc.returncode in (0, -signal.SIGINT):
            # Finished before the signal (0), or the signal came while the interpreter was
            # tearing down after the export (killed by SIGINT: the shell shows 130): the new
            # model, whole.
            verify_layout(detect_directory(out, prefer=NATIVE))
            assert read_card(out / "inference.yml").provenance["checkpoint"] == \
                str(models.ckpt_b)
            shutil.rmtree(out)
            shutil.copytree(models.model, out)
            continue
        assert proc.returncode == 130, err
        assert last_line(err) == "Interrupted."
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert 130 in outcomes, outcomes


# --- pipes -------------------------------------------------------------------------------------


def test_predict_json_into_head_ends_quietly(models, photos):
    command = " ".join([*PPINFER, "predict", "-i", str(photos), "--model", str(models.model),
                        "--json"])
    proc = subprocess.run(["bash", "-c", f"{command} | head -1; exit ${{PIPESTATUS[0]}}"],
                          capture_output=True, text=True, timeout=300)
    assert len(proc.stdout.splitlines()) == 1 and json.loads(proc.stdout)
    assert proc.returncode in (0, 141), proc.stderr
    assert not [line for line in stderr_lines(proc) if "Error" in line or "Traceback" in line]


@pytest.mark.parametrize("command", [["info"], ["models"]])
def test_stdout_closed_before_any_output_ends_quietly(command):
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE
    try:
        proc = subprocess.run([*PPINFER, *command], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(write_end)
    assert proc.returncode in (0, 141)
    assert "Error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# --- outputs that must survive, and inputs that must not be overwritten ------------------------


def test_save_onto_dev_full_is_one_sentence(models, photos):
    proc = run_ppinfer("predict", "-i", str(photos / "cat00.jpg"), "--model", str(models.model),
                       "--save", "/dev/full")
    assert proc.returncode == 2
    assert stderr_lines(proc) == [
        "Error: Cannot write to the --save file /dev/full: No space left on device."]


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); /dev/full covers the error")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_save_on_a_full_disk_keeps_whole_lines_only(models, photos, tiny_disk):
    save = tiny_disk / "results.jsonl"
    proc = run_ppinfer("predict", "-i", str(photos), "--model", str(models.model),
                       "--save", str(save))
    assert proc.returncode == 2
    (message,) = stderr_lines(proc)
    assert message.startswith(f"Error: Cannot write to the --save file {save}: No space left "
                              "on device; it holds the ")
    text = save.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]  # every line whole JSON
    assert text.endswith("\n") and 1 <= len(lines) < 20
    assert f"holds the {len(lines)} whole lines written before." in message


def test_save_onto_an_input_image_is_refused(models, photos, tmp_path):
    image = tmp_path / "cat.jpg"
    shutil.copy(photos / "cat00.jpg", image)
    before = image.read_bytes()
    result = CliRunner().invoke(cli, ["predict", "-i", str(tmp_path), "--model",
                                      str(models.model), "--save", str(image)])
    assert_one_sentence_error(result, f"The --save file {image} is one of the input images")
    assert image.read_bytes() == before


def test_save_onto_a_listed_input_is_refused_by_its_name(models, photos, tmp_path):
    image = tmp_path / "cat.jpg"
    shutil.copy(photos / "cat00.jpg", image)
    before = image.read_bytes()
    listing = tmp_path / "paths.txt"
    listing.write_text(f"{tmp_path}/./cat.jpg\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["predict", "--input-list", str(listing), "--model",
                                      str(models.model), "--save", str(image)])
    assert_one_sentence_error(result, f"The --save file {image} is one of the input images")
    assert image.read_bytes() == before


# --- bench ------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_bench_output_in_a_missing_folder_is_refused_before_the_run(models, tmp_path, option):
    target = tmp_path / "missing" / "r.out"
    result = CliRunner().invoke(cli, ["bench", "--model", str(models.model), "--iterations",
                                      "2", option, str(target)])
    message = assert_one_sentence_error(result, f"Cannot write the {option} file {target}")
    assert "does not exist" in message


def test_ctrl_c_during_bench_writes_the_finished_configurations(models, tmp_path):
    report = tmp_path / "r.json"
    proc = spawn("bench", "--model", str(models.model), "-b", "1,2", "--warmup", "0",
                 "--duration", "4", "--json", str(report))
    seen = []

    def first_case_done() -> bool:
        seen.append(proc.stderr.readline())
        return seen[-1].startswith("[1/2]")

    try:
        wait_until(first_case_done, proc, timeout=300)
        time.sleep(1.0)  # inside the second configuration
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert last_line(err) == "Interrupted."
    assert f"Wrote {report} (the finished configurations)\n" in err
    results = json.loads(report.read_text())["results"]
    assert [(r["batch_size"], r["status"]) for r in results] == [(1, "ok")]


def test_bench_where_nothing_ran_exits_2(models, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    result = CliRunner().invoke(cli, ["bench", "--model", str(models.model), "--iterations", "2",
                                      "--end-to-end", "--input", str(tmp_path / "empty.jpg")])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: No configuration ran: the lines above say why each was skipped.")


# --- options -----------------------------------------------------------------------------------

BAD_OPTIONS = [
    ("bench-duration-nan", ["bench", "--duration", "nan"], "'nan' is not a finite number"),
    ("bench-duration-inf", ["bench", "--duration", "inf"], "'inf' is not a finite number"),
    ("predict-tolerance-nan", ["predict", "--engine", "all", "--tolerance", "nan"],
     "'nan' is not a finite number"),
]


@pytest.mark.parametrize(("row", "args", "fragment"), BAD_OPTIONS, ids=[r[0] for r in BAD_OPTIONS])
def test_non_finite_float_options_are_usage_errors(row, args, fragment):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert fragment in result.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (["--cpu-threads", "1000"], "--cpu-threads 1000 is more than 4 per core"),
    (["-b", "300"], "--batch-size 300 is over ppinfer's limit of 256"),
])
def test_options_that_could_exhaust_the_machine_are_bounded(models, photos, args, fragment):
    result = CliRunner().invoke(cli, ["predict", "-i", str(photos / "cat00.jpg"), "--model",
                                      str(models.model), *args])
    assert_one_sentence_error(result, fragment)


# --- export: deletes only what it wrote ---------------------------------------------------------


def test_export_force_refuses_a_folder_that_holds_no_model(models, tmp_path):
    out = tmp_path / "mine"
    (out / "thesis").mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["export", "-m", ARCH, "-p", str(models.ckpt), "-o",
                                      str(out), "--class-num", str(CLASSES), "--force"])
    assert_one_sentence_error(
        result, f"Output directory {out} holds no model, so --force will not replace it: it "
                "would delete notes.txt, thesis/.")
    assert (out / "notes.txt").read_text() == "keep me" and (out / "thesis").is_dir()


@pytest.mark.parametrize("target", ["/", ".", ".."])
def test_export_into_root_or_the_current_folder_or_its_parent_is_refused_first(
        models, tmp_path, monkeypatch, target):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(cli, ["export", "-m", ARCH, "-p", str(models.ckpt), "-o", target,
                                      "--class-num", str(CLASSES), "--force"])
    what = "the filesystem root" if target == "/" else \
        "the current directory or one of its parents"
    assert_one_sentence_error(result, f"-o {target} is {what}: export into a folder of its own")
    assert sorted(os.listdir(tmp_path)) == ["work"] and not os.listdir(work)


HOME_REASONS = {"file": "Not a directory", "read-only": "Permission denied",
                "full": "No space left on device"}


@contextlib.contextmanager
def unusable_home(tmp_path: Path, kind: str):
    """A PPINFER_HOME that is a file, a read-only folder (for a process without root's
    capabilities) or a full one (a 64 kB tmpfs; skipped where it cannot be mounted)."""
    home = tmp_path / "home"
    if kind == "file":
        home.write_text("not a folder")
    else:
        home.mkdir()
    if kind == "read-only":
        home.chmod(0o555)
    if kind != "full":
        yield home
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(home)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield home
    finally:
        subprocess.run(["umount", str(home)], check=False)


@pytest.mark.parametrize("kind", ["file", "read-only", "full"])
def test_ppinfer_home_that_cannot_hold_the_model_is_one_sentence(tmp_path, kind, photos):
    with unusable_home(tmp_path, kind) as home:
        proc = ppinfer_without_root_reads("predict", "-i", str(photos / "cat00.jpg"),
                                          env={"PPINFER_HOME": str(home)})
    assert proc.returncode == 2, proc.stderr  # full: was "unexpected OSError"
    assert stderr_lines(proc) == [
        f"Error: ppinfer's cache {home} cannot hold the built-in model ({HOME_REASONS[kind]}): "
        "set PPINFER_HOME to a writable folder, or pass --model."]


@pytest.mark.parametrize("kind", ["file", "read-only", "full"])
def test_ppinfer_home_that_cannot_hold_an_onnx_conversion_is_one_sentence(tmp_path, kind,
                                                                         photos, models):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("paddle2onnx")
    with unusable_home(tmp_path, kind) as home:
        proc = ppinfer_without_root_reads("predict", "-i", str(photos / "cat00.jpg"), "--model",
                                          str(models.model), "--engine", "onnxruntime",
                                          env={"PPINFER_HOME": str(home)})
    assert proc.returncode == 2, proc.stderr  # was: unexpected NotADirectoryError
    assert stderr_lines(proc) == [
        f"Error: ppinfer's cache {home} cannot hold the ONNX conversion ({HOME_REASONS[kind]}): "
        "set PPINFER_HOME to a writable folder, or use --engine analysis."]


# --- terminals ---------------------------------------------------------------------------------


def test_escape_codes_and_newlines_in_names_and_labels_print_escaped(models, photos, tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    shutil.copy(photos / "cat00.jpg", folder / "red\x1b[31m.jpg")
    shutil.copy(photos / "cat01.jpg", folder / "two\nrows.jpg")
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"k{i}\x1b]0;owned\x07\n" for i in range(CLASSES)))
    proc = run_ppinfer("predict", "-i", str(folder), "--model", str(models.model),
                       "--labels", str(labels), env={"COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "red\\x1b[31m.jpg" in proc.stdout and "two\\x0arows.jpg" in proc.stdout
    assert "k0\\x1b]0;owned\\x07" in proc.stdout
    assert not any(line.strip().startswith(("rows.jpg", "│ rows.jpg"))
                   for line in proc.stdout.splitlines())
    saved = json_lines(CliRunner().invoke(cli, ["predict", "-i", str(folder), "--model",
                                                str(models.model), "--json"]).stdout)
    assert {Path(r["file_name"]).name for r in saved} == {"red\x1b[31m.jpg", "two\nrows.jpg"}


def test_card_still_reads_after_these_checks(models):
    """The checks refuse hostile cards, not the ones ppinfer writes."""
    card = read_card(models.model / "inference.yml")
    assert card.class_num == CLASSES and card.preprocess is not None
    assert np.isfinite(card.preprocess.std).all()
