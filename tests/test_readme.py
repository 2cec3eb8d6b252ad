"""README.md's shell and Python blocks run as written (sqlite-utils tests its docs this way).

Blocks run in README order, in one scratch directory, so a block may use what an earlier one
wrote (``out/lite0``). A block that needs a file the reader brings is preceded by
``<!-- readme-test: skip (why) -->`` and is skipped here, by name; every other ``bash`` and
``python`` block must exit 0. ``ppinfer`` on PATH is this checkout's, run by this Python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]*)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```", re.S | re.M)


def readme_blocks() -> list[tuple[str, str, str, str | None]]:
    """(id, language, code, why skipped or None) for every bash and python block."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        lang = match["lang"]
        if lang not in ("bash", "python"):
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        blocks.append((f"line{line}-{lang}", lang, match["code"], skip["why"] if skip else None))
    return blocks


BLOCKS = readme_blocks()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A scratch directory and an environment whose `ppinfer` runs this checkout."""
    root = tmp_path_factory.mktemp("readme")
    bin_dir = root / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "ppinfer"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ppinfer "$@"\n')
    shim.chmod(0o755)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env = {k: v for k, v in os.environ.items() if k != "PPINFER_ENGINE"}  # as a user runs
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
           "COLUMNS": "100"}
    return root, env


@pytest.mark.parametrize(("lang", "code", "skipped"), [b[1:] for b in BLOCKS],
                         ids=[b[0] for b in BLOCKS])
def test_readme_block_runs(workdir, lang, code, skipped):
    if skipped:
        pytest.skip(f"marked in README: {skipped}")
    root, env = workdir
    if lang == "bash":
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        command = [sys.executable, "-c", code]
    run = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, f"{code}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


def test_readme_has_runnable_blocks_and_marks_the_rest():
    langs = [b[1] for b in BLOCKS if b[3] is None]
    assert langs.count("bash") >= 4 and langs.count("python") >= 3
    text = README.read_text(encoding="utf-8")
    for match in SKIP.finditer(text):  # every mark sits right above a block
        after = text[match.end():].lstrip("\n")
        assert after.startswith(("```bash", "```python")), match.group(0)


def test_readme_needs_nothing_outside_the_repository():
    text = README.read_text(encoding="utf-8")
    assert "../" not in text
    for path in (README.parent / "src").rglob("*.py"):
        assert "../shared" not in path.read_text(encoding="utf-8"), path


def test_seed_is_only_a_flag_value_in_what_users_read():
    text = README.read_text(encoding="utf-8")
    assert re.findall(r'(?<![`"])\bseed\b(?!["`])', text) == []
    from click.testing import CliRunner

    from ppinfer.cli import cli

    for args in (["engines"], ["export", "--help"]):
        out = CliRunner().invoke(cli, args, env={"COLUMNS": "200"}).output
        assert "seed" not in out.replace("'seed'", ""), out
