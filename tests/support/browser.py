"""The `chromium` fixture: Debian's headless Chromium driven by Playwright, one per test session.

Loaded for the whole suite by `pytest_plugins` in tests/conftest.py, so the dashboard tests and the
demo test share one browser: Playwright's sync API cannot be started twice in one thread.
"""

from __future__ import annotations

import os
import shutil

import pytest

from . import on_ci

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def playwright_driver():
    """Playwright's sync driver, for tests that launch Chromium with arguments of their own."""
    reason = None
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = reason or "the Python package playwright is not installed"
    if reason:
        if on_ci():
            pytest.fail(f"{reason}: CI must run the browser tests", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def chromium(playwright_driver):
    """Debian's Chromium driven by Playwright (`playwright install` cannot download browsers here)."""
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        yield browser
    finally:
        browser.close()
