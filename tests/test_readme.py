"""README.md's and docs/'s shell and Python blocks run as written (sqlite-utils tests its docs
this way).

Blocks run in README order, then each page of :data:`DOCS` in that order, all in one scratch
directory, so a block may use what an earlier one wrote (``out/lite0``). A block that needs a
file the reader brings is preceded by
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

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The reference pages, in the order their blocks run (a later page may use an earlier one's
# output). A page added to docs/ must be listed: test_every_docs_page_is_run says so.
DOCS = ["install.md", "export.md", "predict.md", "python-api.md", "ray.md", "serving.md",
        "speed.md", "quantize.md", "plugins.md", "layout.md", "files-and-trust.md", "faults.md"]
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]*)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```", re.S | re.M)


def page_blocks(path: Path) -> list[tuple[str, str, str, str | None]]:
    """(id, language, code, why skipped or None) for every bash and python block of a page."""
    text = path.read_text(encoding="utf-8")
    name = path.stem if path.parent.name == "docs" else "README"
    blocks = []
    for match in FENCE.finditer(text):
        lang = match["lang"]
        if lang not in ("bash", "python"):
            continue
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        blocks.append((f"{name}-line{line}-{lang}", lang, match["code"],
                       skip["why"] if skip else None))
    return blocks


def readme_blocks() -> list[tuple[str, str, str, str | None]]:
    """Every page's blocks, README first."""
    return [b for page in [README, *(ROOT / "docs" / d for d in DOCS)] for b in page_blocks(page)]


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
    own = [b for b in page_blocks(README) if b[3] is None]
    assert [b[1] for b in own].count("bash") >= 4 and [b[1] for b in own].count("python") >= 1
    for page in [README, *(ROOT / "docs" / d for d in DOCS)]:
        text = page.read_text(encoding="utf-8")
        for match in SKIP.finditer(text):  # every mark sits right above a block
            after = text[match.end():].lstrip("\n")
            assert after.startswith(("```bash", "```python")), (page.name, match.group(0))


def test_every_docs_page_is_run_and_every_link_resolves():
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages == sorted(DOCS), "list every docs/ page in DOCS, in the order it runs"
    for page in [README, *(ROOT / "docs" / d for d in DOCS)]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_readme_is_a_front_door():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 260


def _all_pages() -> str:
    return "\n".join(p.read_text(encoding="utf-8")
                     for p in [README, *(ROOT / "docs" / d for d in DOCS)])


def test_readme_needs_nothing_outside_the_repository():
    assert "../" not in README.read_text(encoding="utf-8")
    assert "../shared" not in _all_pages()  # docs/ link up to the README, never further
    for path in (README.parent / "src").rglob("*.py"):
        assert "../shared" not in path.read_text(encoding="utf-8"), path


def test_seed_is_only_a_flag_value_in_what_users_read():
    text = _all_pages()
    assert re.findall(r'(?<![`"])\bseed\b(?!["`])', text) == []
    from click.testing import CliRunner

    from ppinfer.cli import cli

    for args in (["engines"], ["export", "--help"]):
        out = CliRunner().invoke(cli, args, env={"COLUMNS": "200"}).output
        assert "seed" not in out.replace("'seed'", ""), out
