"""Headless Chromium (Debian's package) driving the browser build of ``@azure/communication-chat``.

The page is served from an origin of its own (another port), so every call is
cross-origin, as in a real web app. The SDK bundle is built with esbuild from
the pinned ``package.json``/``package-lock.json`` next to this file. Without
Chromium, Node.js or Playwright the tests skip with the reason, or fail under
``THREADLINE_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.locks import one_at_a_time
from tests.pg import _unavailable

__all__ = ["CHROMIUM", "FLAGS", "BrowserPage", "build_bundle", "build_decoder", "page_origin", "require_browser",
           "require_node"]

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
#: Flags for a quiet, sandbox-less headless run in a container.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def require_browser() -> None:
    """Skip (or fail under THREADLINE_REQUIRE_SERVICES=1) unless Chromium, Node.js and Playwright are here."""
    missing = [name for name, ok in (
        (f"Chromium ({CHROMIUM}; apt-get install -y chromium)", Path(CHROMIUM).exists()),
        ("Node.js and npm", bool(shutil.which("node") and shutil.which("npm"))),
    ) if not ok]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -e '.[test]')")
    if missing:
        _unavailable("browser tests need " + ", ".join(missing))


def require_node() -> None:
    """Skip (or fail under THREADLINE_REQUIRE_SERVICES=1) unless Node.js and npm are here."""
    if not (shutil.which("node") and shutil.which("npm")):
        _unavailable("these tests need Node.js and npm (apt-get install -y nodejs npm)")


def _esbuild(entry: str, out: str, platform: str) -> Path:
    build = HERE / "build"
    with one_at_a_time(HERE):  # the suite's workers share this folder
        if not (HERE / "node_modules" / ".bin" / "esbuild").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=600,
                           capture_output=True)
        build.mkdir(exist_ok=True)
        subprocess.run([str(HERE / "node_modules" / ".bin" / "esbuild"), entry, "--bundle",
                        "--format=iife" if platform == "browser" else "--format=cjs", f"--platform={platform}",
                        "--target=es2020", f"--outfile=build/{out}", "--log-level=warning"],
                       cwd=HERE, check=True, timeout=120)
    return build / out


def build_bundle() -> Path:
    """``npm ci`` when needed, then bundle the test page with esbuild into ``build/``; returns the folder."""
    bundle = _esbuild("page/entry.js", "chat.js", "browser")
    shutil.copy(HERE / "page" / "index.html", bundle.parent / "index.html")
    return bundle.parent


def build_decoder() -> Path:
    """Bundle ``page/decode.js`` (the SDK's own ``TrouterUtils`` decoding) for Node.js; returns the script."""
    return _esbuild("page/decode.js", "decode.js", "node")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def page_origin(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a free port of its own; yield the origin."""
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class BrowserPage:
    """One page of the test app, with helpers to read what the SDK delivered."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))

    def start(self, endpoint: str, token: str) -> None:
        """``new ChatClient(endpoint, credential)`` + ``startRealtimeNotifications()`` + every listener."""
        result = self.page.evaluate("([e, t]) => window.threadline.start(e, t)", [endpoint, token])
        assert result == "started"

    def value(self, expression: str) -> Any:
        """Evaluate an expression in the page."""
        return self.page.evaluate(expression)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The events received so far (JSON copies; dates as ISO strings), optionally of one kind."""
        items: list[dict[str, Any]] = self.page.evaluate("window.threadline.events")
        return [item["event"] for item in items if name is None or item["name"] == name]

    def wait(self, expression: str, timeout: float = 30.0) -> Any:
        """Wait until a page expression is truthy (checked in the page every 50 ms); return its value."""
        try:
            handle = self.page.wait_for_function(expression, timeout=timeout * 1000, polling=50)
        except Exception as exc:
            names = [e["name"] for e in self.page.evaluate("window.threadline.events")]
            raise AssertionError(f"timed out waiting for {expression}; events: {names}; "
                                 f"console: {json.dumps(self.console[-10:])}") from exc
        return handle.json_value()
