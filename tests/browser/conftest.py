"""Fixtures of the Chromium tests: the SDK bundle, the page's origin and the browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .chromium import CHROMIUM, FLAGS, build_bundle, page_origin, require_browser


@pytest.fixture(scope="session")
def page_url() -> Iterator[str]:
    """The test page's URL, on an origin of its own."""
    require_browser()
    with page_origin(build_bundle()) as origin:
        yield f"{origin}/index.html"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (no browser download).

    Module-scoped: Playwright's sync API keeps an event loop marked running in this thread while it is
    open, which ``asyncio.run`` in later test modules would refuse.
    """
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
