"""Decoding in worker processes gives the threads' results, errors included, and leaves nothing
behind: no worker process, no shared file, however the run ends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ppinfer.errors import ConfigError
from ppinfer.pipeline.decode_processes import (
    ProcessDecoder,
    close_shared,
    decode_here,
    shared_decoder,
)
from ppinfer.pipeline.preprocess_config import PreprocessConfig
from ppinfer.predict import decode_in_processes

from .test_faults import small_models
from .test_interrupts import wait_for

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

PREPROCESS = PreprocessConfig()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return small_models(tmp_path_factory)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos) -> Path:
    """Real photos, a tiny PNG, a corrupt JPEG, an empty file and a huge-by-header image."""
    root = tmp_path_factory.mktemp("mixed")
    for name, path in photos.items():
        shutil.copy(path, root / f"{name}{path.suffix}")
    cv2.imwrite(str(root / "tiny.png"), np.full((2, 3, 3), 200, np.uint8))
    data = (root / "chelsea.jpg").read_bytes()
    (root / "broken.jpg").write_bytes(data[: len(data) // 3])
    (root / "empty.jpg").write_bytes(b"")
    cv2.imwrite(str(root / "wide.png"), np.zeros((8, 60000, 3), np.uint8))  # 480,000 px
    return root


def _predict(model: Path, folder: Path, decode: str, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PPINFER_DECODE=decode)
    return subprocess.run([sys.executable, "-m", "ppinfer", "predict", "-i", str(folder),
                           "--model", str(model), "--json", "-b", "3", *extra],
                          capture_output=True, text=True, timeout=300, env=env)


def test_worker_processes_give_the_threads_results_and_errors_line_for_line(models, folder):
    threads = _predict(models.model, folder, "threads", "--max-pixels", "300000")
    processes = _predict(models.model, folder, "processes", "--max-pixels", "300000")
    assert threads.returncode == processes.returncode == 1  # some images failed
    assert processes.stdout == threads.stdout
    lines = [json.loads(line) for line in processes.stdout.splitlines()]
    errors = {Path(line["file_name"]).name: line["error"] for line in lines if "error" in line}
    assert set(errors) == {"broken.jpg", "empty.jpg", "wide.png"}
    assert "truncated" in errors["broken.jpg"] and "empty" in errors["empty.jpg"]
    assert errors["wide.png"].endswith(
        "is 60000x8 pixels (0.48 megapixels), over the limit of 0.3 megapixels.")
    assert len(lines) - len(errors) == 4  # three photos and the tiny PNG
    assert processes.stderr == threads.stderr
    assert not list(Path("/dev/shm").glob("ppinfer-decode-*"))


def test_a_decoder_whose_worker_dies_decodes_the_rest_here(folder):
    paths = sorted(str(p) for p in folder.glob("*.jpg"))
    decoder = ProcessDecoder(PREPROCESS, (1, 3, 224, 224), slots=8, workers=1,
                             max_pixels=10**8, max_bytes=1 << 30)
    try:
        first = decoder.result(decoder.submit(paths[0]))
        decoder.workers[0].process.kill()
        decoder.workers[0].process.wait()
        tickets = [decoder.submit(p) for p in paths]
        results = [decoder.result(t) for t in tickets]
    finally:
        decoder.close()
    settings = {"preprocess": PREPROCESS, "max_pixels": 10**8, "max_bytes": 1 << 30}
    expected = [decode_here(p, settings) for p in paths]
    assert np.array_equal(first.tensor, expected[0].tensor)
    for got, want in zip(results, expected):
        assert got.error == want.error
        assert (got.tensor is None and want.tensor is None) or np.array_equal(got.tensor,
                                                                              want.tensor)


def test_decoder_workers_exit_and_leave_no_shared_file_when_closed(folder):
    decoder = ProcessDecoder(PREPROCESS, (1, 3, 224, 224), slots=4, workers=2,
                             max_pixels=10**8, max_bytes=1 << 30)
    assert not list(Path("/dev/shm").glob("ppinfer-decode-*"))  # unlinked once mapped
    processes = [w.process for w in decoder.workers]
    decoder.result(decoder.submit(str(folder / "chelsea.jpg")))
    decoder.close()
    assert all(p.poll() == 0 for p in processes)


def test_a_kill_9_while_the_workers_start_leaves_no_shared_file():
    import time

    script = ("from ppinfer.pipeline.decode_processes import ProcessDecoder\n"
              "from ppinfer.pipeline.preprocess_config import PreprocessConfig\n"
              "ProcessDecoder(PreprocessConfig(), (1, 3, 224, 224), 4, 2, 10**8, 1 << 30)\n"
              "import time; time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not (workers := _decode_workers_of(proc.pid)):  # still importing OpenCV
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.kill()
        proc.wait()
    shared = {line.split(None, 5)[5].removesuffix(" (deleted)")
              for line in maps.splitlines() if "ppinfer-decode" in line}
    assert shared, "the shared memory was not mapped yet: nothing was tested"
    assert not [path for path in shared if os.path.exists(path)]
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


@pytest.mark.parametrize("safe_path", ["", "1"])  # PYTHONSAFEPATH: no folder put first
def test_a_cv2_py_in_the_current_folder_does_not_replace_opencv_in_the_workers(
        folder, tmp_path, monkeypatch, safe_path):
    monkeypatch.setenv("PYTHONSAFEPATH", safe_path)
    (tmp_path / "cv2.py").write_text("raise SystemExit('the cv2.py beside the photos')\n")
    (tmp_path / "numpy.py").write_text("raise SystemExit('the numpy.py beside the photos')\n")
    monkeypatch.chdir(tmp_path)
    decoder = ProcessDecoder(PREPROCESS, (1, 3, 224, 224), slots=2, workers=1,
                             max_pixels=10**8, max_bytes=1 << 30)  # OSError if they died
    try:
        got = decoder.result(decoder.submit(str(folder / "chelsea.jpg")))
    finally:
        decoder.close()
    want = decode_here(str(folder / "chelsea.jpg"), decoder.settings)
    assert np.array_equal(got.tensor, want.tensor)


def test_a_decoder_in_use_is_not_stopped_by_a_run_with_other_settings(folder):
    """Two threads predicting at once with other settings (another model, --max-pixels): the
    second run's decoder must not stop the first's mid-run ("decode task 8 was never
    submitted")."""
    shape, photo = (1, 3, 224, 224), str(folder / "chelsea.jpg")
    first = shared_decoder(PREPROCESS, shape, 4, 1, 10**8, 1 << 30)
    second = None
    try:
        second = shared_decoder(PREPROCESS, shape, 4, 1, 10**7, 1 << 30)
        assert second is not None and second is not first
        assert first.usable and first.result(first.submit(photo)).tensor is not None
        assert shared_decoder(PREPROCESS, shape, 4, 1, 10**8, 1 << 30) is None  # busy: threads
        assert second.result(second.submit(photo)).tensor is not None
    finally:
        for decoder in (first, second):
            if decoder is not None:
                decoder.lock.release()
        close_shared()
    assert not first.usable and not second.usable


def test_a_tensor_larger_than_a_slot_still_arrives(folder):
    decoder = ProcessDecoder(PREPROCESS, (1, 3, 8, 8), slots=2, workers=1,
                             max_pixels=10**8, max_bytes=1 << 30)
    try:
        loaded = decoder.result(decoder.submit(str(folder / "chelsea.jpg")))
    finally:
        decoder.close()
    assert loaded.tensor.shape == (1, 3, 224, 224)


def test_worker_processes_are_used_only_when_asked_for(models, monkeypatch):
    import ppinfer

    analysis = ppinfer.load(str(models.model)).engine
    monkeypatch.delenv("PPINFER_DECODE", raising=False)
    assert decode_in_processes(analysis) is False  # threads: as fast here (BENCHMARKS.md)
    monkeypatch.setenv("PPINFER_DECODE", "processes")
    assert decode_in_processes(analysis) is True
    monkeypatch.setenv("PPINFER_DECODE", "threads")
    assert decode_in_processes(analysis) is False
    monkeypatch.setenv("PPINFER_DECODE", "fibers")
    with pytest.raises(ConfigError, match="PPINFER_DECODE='fibers' is not one of"):
        decode_in_processes(analysis)


def test_ctrl_c_with_worker_processes_exits_130_and_leaves_no_worker(models, tmp_path):
    import signal
    import time

    images = tmp_path / "many"
    images.mkdir()
    rng = np.random.default_rng(2)
    count = 800  # noise PNGs of 96 x 128: a few seconds of decoding, so Ctrl-C lands mid-run
    for i in range(count):
        cv2.imwrite(str(images / f"img{i:03d}.png"), rng.integers(0, 256, (96, 128, 3), np.uint8))
    save = tmp_path / "results.jsonl"
    env = dict(os.environ, PPINFER_DECODE="processes")
    proc = subprocess.Popen([sys.executable, "-m", "ppinfer", "predict", "-i", str(images),
                             "--model", str(models.model), "--save", str(save), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: save.exists() and save.stat().st_size > 0, proc)
        workers = _decode_workers_of(proc.pid)
        assert proc.poll() is None, "the run finished before Ctrl-C: nothing was tested"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "Interrupted."
    assert workers, "no decode worker was running: nothing was tested"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    lines = [json.loads(line) for line in save.read_text().splitlines()]
    assert 1 <= len(lines) < count


def _decode_workers_of(parent: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{parent}\n" in text and b"decode_worker" in cmdline:
            found.append(int(status.parent.name))
    return found


FORK_SCRIPT = r"""
import json, os, sys
import ppinfer

cat, cup = sys.argv[1], sys.argv[2]
with ppinfer.load(cpu_threads=1) as p:
    want = {path: p.predict(path)[0].to_dict() for path in (cat, cup)}  # starts the workers
    read, write = os.pipe()
    child = os.fork()
    mine = cup if child == 0 else cat  # both predict at once, each its own image
    got = [p.predict([mine])[0].to_dict() for _ in range(12)]
    ok = all(g == want[mine] for g in got)
    if child == 0:
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.waitpid(child, 0)
    print(json.dumps({"parent": ok, "child": os.read(read, 1) == b"1"}))
"""


def test_a_fork_after_a_decode_processes_run_never_shares_the_workers(photos):
    env = dict(os.environ, PPINFER_DECODE="processes")
    try:
        run = subprocess.run([sys.executable, "-c", FORK_SCRIPT, str(photos["chelsea"]),
                              str(photos["coffee"])], capture_output=True, text=True,
                             timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("parent and child hung on the workers they shared")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == {"parent": True, "child": True}
