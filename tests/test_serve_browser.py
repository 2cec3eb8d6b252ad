"""The page at ``/`` in a real browser: Debian's chromium driven by Playwright (its own browser
download cannot work offline, so ``executable_path`` points at the system's). Upload the
shipped photo, read the top-1 and its score from the page, screenshot it. Skips, saying why,
where Playwright or chromium is missing (.ci/run installs both).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ppinfer.pipeline.sample import sample_image_path

from .test_serve_process import Server


def _missing(reason: str) -> None:
    """Skip, or fail where CI installed the browser and asks for the test to run
    (PPINFER_TEST_REQUIRE_BROWSER=1)."""
    if os.environ.get("PPINFER_TEST_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _chromium() -> str:
    for name in (os.environ.get("PPINFER_TEST_CHROMIUM"), "chromium", "chromium-browser"):
        path = name and shutil.which(name)
        if path:
            return path
    _missing("no chromium on PATH (apt-get install chromium, or set PPINFER_TEST_CHROMIUM)")


def test_the_page_shows_the_shipped_photos_top_1_in_a_real_browser(tmp_path):
    try:
        from playwright import sync_api
    except ImportError:
        _missing("Playwright is not installed (pip install playwright)")
    chromium = _chromium()
    from click.testing import CliRunner

    from ppinfer.cli import cli

    run = CliRunner().invoke(cli, ["predict", "--engine", "analysis", "--json"])
    want = json.loads(run.stdout.splitlines()[0])
    server = Server()
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium,
                                                 args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(server.url + "/")
            page.set_input_files("#file", str(sample_image_path()))
            first = page.locator("li.prediction").first
            first.wait_for(timeout=120_000)
            label = first.locator(".label").inner_text()
            score = float(first.locator(".score").inner_text())
            rows = page.locator("li.prediction").count()
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        server.stop()
    assert label == want["label_names"][0]
    assert score == pytest.approx(want["scores"][0], abs=1e-4)  # the page shows 4 decimals
    assert rows == len(want["class_ids"])
    assert shot.read_bytes().startswith(b"\x89PNG")
