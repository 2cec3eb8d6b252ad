"""stdout carries only results, whatever stderr is (issue 23, item 6): rich's progress bar,
drawn on stderr when it is a terminal, redirects sys.stdout into itself by default, so
``ppinfer predict -i photos/ --json > t.jsonl`` sent the JSON lines to the screen."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 20  # the progress bar is drawn from 16 inputs


def _drain(fd: int, into: list[bytes]) -> None:
    """Read the terminal's side until it closes, so the child never blocks writing to it."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not chunk:
            return
        into.append(chunk)


def test_json_lines_go_to_stdout_while_stderr_is_a_terminal(photos, tmp_path):
    image = cv2.resize(cv2.imread(str(photos["chelsea"])), (96, 64))
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(IMAGES):
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), image)
    master, slave = pty.openpty()
    screen: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, screen), daemon=True)
    reader.start()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]), TERM="xterm", COLUMNS="100")
    out = tmp_path / "t.jsonl"
    with open(out, "wb") as stdout:
        run = subprocess.run([sys.executable, "-m", "ppinfer", "predict", "-i", str(folder),
                              "--json"], stdout=stdout, stderr=slave, env=env, timeout=300)
    os.close(slave)
    reader.join(10)
    os.close(master)
    assert run.returncode == 0, b"".join(screen).decode(errors="replace")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == IMAGES  # was 0: every line was drawn on the terminal instead
    assert all(line["class_ids"] for line in lines)
    assert b'"class_ids"' not in b"".join(screen)
