"""Real-browser tests: Debian's Chromium driven by Playwright against pytest-django's
``live_server``. Run with ``pytest tests/browser`` (marker ``browser``).

The browser is never downloaded: it is /usr/bin/chromium, and the tests fail (never skip)
when it is missing. The Playwright driver and the browser live for the session; each test
gets fresh pages in a fresh context (no cookies carried from one test to the next).
"""

import os
from pathlib import Path

import pytest

from tests.browser.helpers import DESKTOP, PHONE

# Playwright's sync API runs an asyncio event loop in this thread, and Django refuses ORM
# calls from a thread with a running loop. The loop only drives the browser here, so the
# fixtures' and tests' database access is safe.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: a real-browser test (Chromium via Playwright, live server)"
    )


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture(scope="session")
def browser(playwright_driver):
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need Debian's "
            "chromium package (apt-get install chromium); they never download a browser."
        )
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def _page(browser, viewport):
    context = browser.new_context(viewport=viewport, locale="ja-JP")
    context.set_default_timeout(10_000)
    return context, context.new_page()


@pytest.fixture
def page(browser):
    """A desktop-sized page (1280 px wide) in a context of its own."""
    context, page = _page(browser, DESKTOP)
    yield page
    context.close()


@pytest.fixture
def phone_page(browser):
    """A phone-sized page (360 × 740)."""
    context, page = _page(browser, PHONE)
    yield page
    context.close()


@pytest.fixture
def new_page(browser):
    """Further pages, each in its own context (another person at another browser)."""
    contexts = []

    def make(viewport=DESKTOP):
        context, page = _page(browser, viewport)
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()
