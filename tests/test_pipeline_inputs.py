"""Expanding -i specs into image paths (ppinfer.pipeline.inputs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ppinfer.pipeline.inputs import IMAGE_EXTENSIONS, InputItem, expand_inputs, is_image_name

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def paths(items: list[InputItem]) -> list[str]:
    assert all(item.error is None for item in items), items
    return [item.path for item in items]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    touch(
        tmp_path,
        "photos/b.jpg",
        "photos/a.PNG",
        "photos/notes.txt",
        "photos/c.JpEg",
        "photos/sub/z.webp",
        "photos/sub/deeper/y.tif",
        "photos/sub/readme.md",
        "photos/a_sub/x.bmp",
        "photos/other.tiff",
    )
    return tmp_path


def test_image_extensions_case_insensitive():
    assert IMAGE_EXTENSIONS == (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
    assert is_image_name("A.JPG") and is_image_name("x.TiFf")
    assert not is_image_name("x.gif") and not is_image_name("jpg")


def test_directory_walk_is_recursive_sorted_and_images_only(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert paths(expand_inputs(["photos"])) == [
        "photos/a.PNG",
        "photos/b.jpg",
        "photos/c.JpEg",
        "photos/other.tiff",
        "photos/a_sub/x.bmp",
        "photos/sub/z.webp",
        "photos/sub/deeper/y.tif",
    ]


def test_trailing_slash_keeps_clean_paths(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert paths(expand_inputs(["photos/sub/"]))[0] == "photos/sub/z.webp"


def test_named_file_kept_whatever_its_extension(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert paths(expand_inputs(["photos/notes.txt"])) == ["photos/notes.txt"]


def test_missing_spec_is_an_error_item(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "ok.jpg")
    items = expand_inputs(["ok.jpg", "missing.jpg", "ok.jpg"])
    assert items == [
        InputItem("ok.jpg"),
        InputItem("missing.jpg", "missing.jpg does not exist: check the path."),
        InputItem("ok.jpg"),
    ]


def test_directory_without_images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "docs/readme.md", "docs/deep/x.txt")
    (tmp_path / "empty").mkdir()
    items = expand_inputs(["docs", "empty"])
    assert [item.path for item in items] == ["docs", "empty"]
    assert items[0].error == "Directory docs holds no images (jpg jpeg png bmp webp tif tiff)."
    assert items[1].error is not None


def test_globs(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert paths(expand_inputs(["photos/*.jpg"])) == ["photos/b.jpg"]
    assert paths(expand_inputs(["photos/?.*"])) == ["photos/a.PNG", "photos/b.jpg", "photos/c.JpEg"]
    assert paths(expand_inputs(["photos/[ab].*"])) == ["photos/a.PNG", "photos/b.jpg"]
    assert paths(expand_inputs(["photos/**/*.ti*"])) == [
        "photos/other.tiff",
        "photos/sub/deeper/y.tif",
    ]
    # A matched directory is walked, as when a shell expands photos/* into files and folders.
    assert paths(expand_inputs(["photos/a_*"])) == ["photos/a_sub/x.bmp"]


def test_glob_without_images(tree, monkeypatch):
    monkeypatch.chdir(tree)
    (item,) = expand_inputs(["photos/*.gif"])
    assert item.path == "photos/*.gif" and "No images" in item.error and "match" in item.error
    (item,) = expand_inputs(["photos/*.txt"])  # matches, but none is an image
    assert item.error is not None


def test_existing_name_with_glob_characters_is_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "a[1].jpg", "a1.jpg")
    assert paths(expand_inputs(["a[1].jpg"])) == ["a[1].jpg"]


def test_a_file_given_twice_runs_twice_so_results_line_up_with_inputs(tree, monkeypatch):
    monkeypatch.chdir(tree)
    items = expand_inputs(["photos/b.jpg", "./photos/b.jpg", "photos/*.jpg", "photos/b.jpg"])
    assert paths(items) == ["photos/b.jpg", "./photos/b.jpg", "photos/b.jpg", "photos/b.jpg"]


def test_symlink_loop_is_walked_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "d/a.jpg", "d/sub/b.png")
    os.symlink("..", tmp_path / "d/sub/up")  # d/sub/up -> d: a loop
    os.symlink(".", tmp_path / "d/self")
    assert paths(expand_inputs(["d"])) == ["d/a.jpg", "d/sub/b.png"]


def test_symlinked_directory_is_followed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "elsewhere/far.jpg", "d/near.jpg")
    os.symlink(tmp_path / "elsewhere", tmp_path / "d/link")
    assert paths(expand_inputs(["d"])) == ["d/near.jpg", "d/link/far.jpg"]


def test_non_ascii_and_spaces(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "фото dir/кот 1.jpg", "фото dir/ĉat 猫.PNG")
    assert paths(expand_inputs(["фото dir"])) == ["фото dir/ĉat 猫.PNG", "фото dir/кот 1.jpg"]
    assert paths(expand_inputs(["фото dir/*1.jpg"])) == ["фото dir/кот 1.jpg"]


def test_unreadable_subdirectory_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "d/a.jpg", "d/locked/b.jpg")
    locked = tmp_path / "d/locked"
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: permissions do not stop reading")
        items = expand_inputs(["d"])
        assert items[0] == InputItem("d/a.jpg")
        assert items[1].path == "d/locked" and "Cannot read directory" in items[1].error
    finally:
        locked.chmod(0o755)


def test_pathlike_specs(tree):
    assert paths(expand_inputs([tree / "photos" / "b.jpg"])) == [str(tree / "photos" / "b.jpg")]
