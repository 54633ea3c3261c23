"""``samples/web``: the UI Library's ChatComposite, unmodified, in two Chromium pages.

``samples/web/run.py`` (the one-line way users run the sample) seeds Alice, Bob
and a thread and serves the page; each page types in the composite's send
box, and the other page renders the message without a reload.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.conftest import ENGINES, ROOT, RunningServer, launch
from tests.locks import one_at_a_time

from .chromium import require_browser
from .nodes import restartable, two_nodes

SAMPLE = ROOT / "samples" / "web"


@pytest.fixture(scope="session")
def sample_built() -> Path:
    """Install the sample's pinned packages when needed and bundle it."""
    require_browser()
    with one_at_a_time(SAMPLE):  # the suite's workers share this folder
        if not (SAMPLE / "node_modules" / ".bin" / "esbuild").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SAMPLE, check=True, timeout=900,
                           capture_output=True)
        subprocess.run(["npm", "run", "build"], cwd=SAMPLE, check=True, timeout=300, capture_output=True)
    return SAMPLE / "public"


@contextlib.contextmanager
def run_sample(server: RunningServer) -> Iterator[dict[str, str]]:
    """Run ``samples/web/run.py`` against a server; yield each user's URL."""
    process = subprocess.Popen(
        [sys.executable, str(SAMPLE / "run.py"), "--data", str(server.data_dir), "--http", server.http_endpoint,
         "--https", server.https_endpoint, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("Serving"):
                break
            name, sep, url = line.partition(": ")
            if sep and name in ("Alice", "Bob"):
                urls[name] = url.strip()
        assert set(urls) == {"Alice", "Bob"}, "run.py printed no URLs"
        yield urls
    finally:
        process.terminate()
        process.wait(10)


def _local_only(context: Any) -> None:
    """Keep the page's traffic on this machine (the UI Library would fetch icon fonts from a CDN)."""
    def route(request_route: Any) -> None:
        host = urlsplit(request_route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            request_route.continue_()
        else:
            request_route.abort()

    context.route("**/*", route)


@contextlib.contextmanager
def two_pages(chromium: Any, urls: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    contexts = [chromium.new_context(ignore_https_errors=True) for _ in range(2)]
    try:
        pages = []
        for context, name in zip(contexts, ("Alice", "Bob"), strict=True):
            _local_only(context)
            page = context.new_page()
            page.goto(urls[name])
            page.locator("textarea").wait_for(timeout=30000)
            pages.append(page)
        yield pages[0], pages[1]
    finally:
        for context in contexts:
            context.close()


def expect(locator: Any) -> Any:
    """Playwright's retrying assertions (imported late: Playwright may be missing, then the tests skip)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _bubble(page: Any, text: str) -> Any:
    """The message bubble holding ``text`` (not the screen-reader announcement of it)."""
    return page.locator('[role="text"]', has_text=text)


def _converse(alice: Any, bob: Any) -> None:
    hello, reply = "Hello Bob, from Alice's page", "Hi Alice, Bob here"
    alice.locator("textarea").fill(hello)
    alice.locator("textarea").press("Enter")
    _bubble(bob, hello).wait_for(timeout=30000)
    bob.locator("textarea").fill(reply)
    bob.locator("textarea").press("Enter")
    _bubble(alice, reply).wait_for(timeout=30000)
    # The sender's page may show its own message twice for a moment: the event can arrive before the send's
    # HTTP answer, which then merges the local copy into it. Wait for the settled state.
    for page in (alice, bob):
        expect(_bubble(page, hello)).to_have_count(1)
        expect(_bubble(page, reply)).to_have_count(1)
    assert alice.get_by_text("Threadline sample").count() >= 1  # the thread's topic in the header


def test_chat_composite_pages_talk(server: RunningServer, chromium: Any, sample_built: Path) -> None:
    with run_sample(server) as urls, two_pages(chromium, urls) as (alice, bob):
        _converse(alice, bob)


def test_chat_composite_pages_on_two_nodes(tmp_path: Path, chromium: Any, sample_built: Path) -> None:
    with two_nodes(tmp_path) as (one, two), run_sample(one) as urls:
        base, _, fragment = urls["Bob"].partition("#")
        params = {k: v[0] for k, v in parse_qs(fragment).items()}
        params["endpoint"] = two.https_endpoint + "/"  # Bob's page talks to node 2 only
        urls["Bob"] = f"{base}#{urlencode(params)}"
        with two_pages(chromium, urls) as (alice, bob):
            _converse(alice, bob)


@pytest.mark.parametrize("engine", ENGINES)
def test_chat_composite_pages_survive_sigkill(
    engine: str, tmp_path: Path, chromium: Any, sample_built: Path,
) -> None:
    data = tmp_path / "data"
    with restartable(engine, data) as (args, env):
        running = launch(data, *args, env=env)
        try:
            with run_sample(running) as urls, two_pages(chromium, urls) as (alice, bob):
                _converse(alice, bob)
                running.stop(signal.SIGKILL)
                running = launch(data, *args, env=env)
                bob.locator("textarea").fill("Sent after the restart")
                bob.locator("textarea").press("Enter")  # the SDK retries the send until the server is back
                _bubble(alice, "Sent after the restart").wait_for(timeout=60000)
                alice.locator("textarea").fill("Alice after the restart")
                alice.locator("textarea").press("Enter")
                _bubble(bob, "Alice after the restart").wait_for(timeout=60000)
                for page in (alice, bob):
                    for text in ("Hello Bob, from Alice's page", "Hi Alice, Bob here", "Sent after the restart",
                                 "Alice after the restart"):
                        expect(_bubble(page, text)).to_have_count(1)
        finally:
            running.stop(signal.SIGKILL)
