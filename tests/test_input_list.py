"""``--input-list`` (issue 23, item 3): a line is one input. A line that cannot name a file
(a NUL byte) gets its error line in its place and the rest run, with decode threads or
processes (Ray: tests/test_ray_runner.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ppinfer.errors import ConfigError, ImageError
from ppinfer.io.safe_io import read_regular_file
from ppinfer.pipeline.input_list import items_from_lists

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]


def _listing(tmp_path: Path, photos) -> Path:
    listing = tmp_path / "paths.txt"
    listing.write_bytes(b"\n".join([os.fsencode(photos["chelsea"]), b"bad\0name.jpg",
                                    b"", b"\xffbad\0.jpg", os.fsencode(photos["coffee"])]))
    return listing


@pytest.mark.parametrize("decode", ["threads", "processes"])
def test_a_nul_byte_in_an_input_list_line_is_that_line_s_error(photos, tmp_path, decode):
    listing = _listing(tmp_path, photos)
    env = dict(os.environ, PPINFER_DECODE=decode,
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "ppinfer", "predict", "--input-list",
                          str(listing), "--json"], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 1, run.stderr  # was 2: "unexpected ValueError (embedded null byte)"
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["file_name"] for line in lines] == [
        str(photos["chelsea"]), "bad\0name.jpg", "\\xffbad\0.jpg", str(photos["coffee"])]
    assert lines[1]["error"] == (f"Line 2 of the --input-list {listing} holds a NUL byte, "
                                 "which no file name can hold: fix that line.")
    assert lines[2]["error"].startswith("Line 4 of the --input-list")
    assert lines[0]["label_names"][0] in ("tiger cat", "tabby, tabby cat", "Egyptian cat")
    assert lines[3]["class_ids"] and "unexpected" not in run.stderr
    assert run.stderr.splitlines()[-1] == "2 of 4 inputs failed; their lines say why."


def test_a_utf16_input_list_is_refused_in_one_sentence(tmp_path):
    listing = tmp_path / "paths.txt"
    listing.write_bytes("a.jpg\nb.jpg\n".encode("utf-16"))
    with pytest.raises(ConfigError, match="is UTF-16 text: save it as UTF-8"):
        items_from_lists([listing])


def test_a_path_with_a_nul_byte_is_an_image_error_wherever_it_comes_from():
    with pytest.raises(ImageError, match="cannot name a file: it holds a NUL byte"):
        read_regular_file("a\0b.jpg", 100, ImageError)


def test_input_list_dash_reads_the_paths_from_standard_input(photos):
    from click.testing import CliRunner

    from ppinfer.cli import cli

    listing = f"{photos['chelsea']}\n\n{photos['coffee']}\n{photos['chelsea']}\n"
    result = CliRunner().invoke(cli, ["predict", "--json", "--input-list", "-"], input=listing)
    assert result.exit_code == 0, result.output
    names = [json.loads(line)["file_name"] for line in result.stdout.splitlines()]
    assert names == [str(photos["chelsea"]), str(photos["coffee"]), str(photos["chelsea"])]


def test_a_dash_among_the_images_says_how_to_pipe_names(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from ppinfer.cli import cli

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["predict", "--json", "-"], input=b"\xff\xd8 not read")
    assert result.exit_code == 1
    assert "pipe file names with --input-list -" in json.loads(result.stdout)["error"]


def test_an_empty_input_list_on_standard_input_is_one_sentence_and_exit_2():
    from click.testing import CliRunner

    from ppinfer.cli import cli

    result = CliRunner().invoke(cli, ["predict", "--input-list", "-"], input="\n\n")
    assert result.exit_code == 2
    assert result.stderr == ("Error: The --input-list - named no image (blank and # comment "
                             "lines are skipped): nothing to predict.\n")


def test_input_list_lines_starting_with_a_hash_are_comments_and_blank_ones_skipped(tmp_path):
    from ppinfer.pipeline.input_list import numbered_lines

    listing = tmp_path / "paths.txt"
    listing.write_bytes(b"# photos to check\na.jpg\n\n   # indented comment\n\t#tab\n"
                        b"  \r\n./#b.jpg\nc #1.jpg\r\n")
    assert numbered_lines(listing) == [(2, "a.jpg"), (7, "./#b.jpg"), (8, "c #1.jpg")]


def test_an_input_list_of_only_comments_on_standard_input_names_nothing():
    from click.testing import CliRunner

    from ppinfer.cli import cli

    result = CliRunner().invoke(cli, ["predict", "--input-list", "-"],
                                input="# nothing yet\n  # still nothing\n")
    assert result.exit_code == 2
    assert "named no image (blank and # comment lines are skipped)" in result.stderr


def test_a_line_with_trailing_spaces_is_kept_and_its_error_shows_them_and_the_name_without(
        photos, tmp_path):
    """A line is the path it holds, spaces too (a file name may end in one); the error quotes
    the name so the spaces show, and says when the name without them exists."""
    from click.testing import CliRunner

    from ppinfer.cli import cli

    listing = tmp_path / "paths.txt"
    listing.write_text(f"{photos['chelsea']}  \n{tmp_path / 'gone.jpg'} \n")
    result = CliRunner().invoke(cli, ["predict", "--json", "--input-list", str(listing)])
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["error"] for line in lines] == [
        f"Cannot read '{photos['chelsea']}  ': No such file or directory "
        f"('{photos['chelsea']}', without the spaces around it, exists).",
        f"Cannot read '{tmp_path / 'gone.jpg'} ': No such file or directory."]
