"""Browser fixtures: one headless Debian Chromium per test session, driven by Playwright (never a
downloaded browser), and a fresh context (its own cookies) for every user that logs in."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artefacts" / "screenshots"  # git-ignored
# Tall enough for the longest dashboard (refunds, ~3,100 px), so that a screenshot of the whole
# dashboard is a clip of the viewport. A full-page screenshot resizes the page instead, and
# Superset 6.1 drops its whole grid when it measures the grid's width during such a resize
# (DashboardGrid renders nothing below 100 px) and shows it again only on the next resize.
VIEWPORT = {"width": 1600, "height": 3200}
# every address but the server's: Superset's menu loads a telemetry pixel from scarf.sh
_OUTSIDE = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/])")


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make setup` (Debian's chromium)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """``artefacts/screenshots/`` at the repository root, emptied once per session: what a run
    leaves there is that run's (``<role>/<dashboard slug>.png``)."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


def _abort(route) -> None:
    route.abort()


@pytest.fixture
def login(browser, superset_server) -> Iterator[Callable]:
    """``login(user, password)`` → a page logged in through Superset's login form, in a new
    browser context where nothing leaves the machine; the contexts close after the test."""
    contexts = []

    def _login(user: str, password: str):
        context = browser.new_context(
            base_url=superset_server.url, viewport=VIEWPORT, locale="zh-CN"
        )
        contexts.append(context)
        context.set_default_timeout(30_000)
        context.route(_OUTSIDE, _abort)
        page = context.new_page()
        page.goto("/login/")
        page.wait_for_load_state("networkidle")
        page.fill("[data-test=username-input]", user)
        page.fill("[data-test=password-input]", password)
        page.keyboard.press("Enter")
        # logged in once Superset redirects to its welcome page: no need to wait for it to load
        page.wait_for_url("**/superset/welcome/**", wait_until="commit")
        return page

    yield _login
    for context in contexts:
        context.close()
