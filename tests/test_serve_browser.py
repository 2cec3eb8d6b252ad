"""The page at `/` in a real browser (issue 18): Debian's chromium driven by Playwright (its own
browser download cannot work offline, so `executable_path` points at the system's). Upload the
shipped photo, read the top-1 from the page, keep a screenshot."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

import ppinfer  # noqa: E402
from ppinfer.serving import create_app  # noqa: E402

from .test_serve import Running  # noqa: E402

pytestmark = pytest.mark.paddle3_only  # independent of Paddle's version: tests/conftest.py


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
def test_the_page_shows_the_top_classes_of_an_uploaded_photo(tmp_path):
    photo = ppinfer.sample_image_path()
    with ppinfer.load(engine="analysis") as predictor:
        want = predictor.predict(str(photo))[0]
        running = Running(create_app(predictor))
        try:
            with playwright.sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM,
                                            args=["--no-sandbox", "--headless=new"])
                page = browser.new_page()
                page.goto(running.url + "/")
                page.set_input_files("#file", str(photo))
                page.wait_for_selector(".row .label", timeout=60_000)
                labels = page.locator(".row .label").all_inner_texts()
                scores = page.locator(".row .score").all_inner_texts()
                page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
                browser.close()
        finally:
            running.stop()
    assert labels == want.label_names
    assert abs(float(scores[0]) - want.scores[0]) < 1e-4
    assert (tmp_path / "page.png").stat().st_size > 0
