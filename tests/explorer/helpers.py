"""Calling the admin API as scripts do (HMAC-signed) and as the Explorer does (session + CSRF); opening
and signing in to the Explorer in Chromium, with image and keyboard checks."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests

from threadline.identity import hmac as signing

from ..conftest import ROOT, RunningServer

VERSION = "2026-11-28"
#: Screenshots of the Chromium tests (gitignored).
ARTIFACTS = ROOT / "tests" / "artifacts"
#: How long one page step may take, in milliseconds.
WAIT_MS = 15_000
#: Every form control on the page has a label, and every button a name.
UNLABELLED = """() => [
  ...[...document.querySelectorAll("input, textarea, select")]
    .filter((e) => !e.labels.length && !e.getAttribute("aria-label")).map((e) => e.outerHTML),
  ...[...document.querySelectorAll("button")].filter((b) => !b.textContent.trim()).map((b) => b.outerHTML),
]"""


def admin_url(server: RunningServer, path: str, **params: Any) -> str:
    """An http URL of an admin route with the api-version (and any query parameters); a nextLink as it is."""
    if "?" in path:
        return f"{server.http_endpoint}{path}"
    query = {"api-version": VERSION, **{k: v for k, v in params.items() if v is not None}}
    return requests.Request("GET", f"{server.http_endpoint}{path}", params=query).prepare().url or ""


def signed(
    server: RunningServer, method: str, path: str, body: Any = None, *, key: bytes | None = None, **params: Any
) -> requests.Response:
    """An admin request signed with the access key, exactly as the identity SDKs sign."""
    url = admin_url(server, path, **params)
    raw = b"" if body is None else msgspec.json.encode(body)
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}"
    headers = signing.sign(key or signing.decode_key(server.access_key), method, target, parts.netloc, raw, time.time())
    if raw:
        headers["Content-Type"] = "application/json"
    return requests.request(method, url, data=raw or None, headers=headers, timeout=30)


def acs_error(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an ACS-shaped error answer and return its ``error`` object."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) >= {"code", "message"}
    assert response.headers["x-ms-error-code"] == error["code"]
    if code is not None:
        assert error["code"] == code
    return error


class ExplorerSession:
    """A signed-in Explorer session: the cookie in a requests session, the CSRF token beside it."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.http = requests.Session()
        response = self.http.post(admin_url(server, "/admin/session"), json={"accessKey": server.access_key},
                                  timeout=30)
        assert response.status_code == 200, response.text
        self.csrf: str = response.json()["csrfToken"]
        self.sign_in = response

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.http.get(admin_url(self.server, path, **params), timeout=30)

    def post(self, path: str, body: Any = None, *, csrf: str | None = "", **headers: str) -> requests.Response:
        """POST with the session; ``csrf`` "" sends the right token, None none, anything else that value."""
        sent = dict(headers)
        if csrf is not None:
            sent["X-Threadline-CSRF"] = csrf or self.csrf
        return self.http.post(admin_url(self.server, path), json=body if body is not None else {}, headers=sent,
                              timeout=30)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour RGB PNG, so a page's decoded pixels can be checked against it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


#: A loaded <img>'s [source scheme, width, height, RGBA of its first pixel] (drawn on a canvas).
DECODED = """(img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return [img.src.split(":")[0], img.naturalWidth, img.naturalHeight, [...context.getImageData(0, 0, 1, 1).data]];
}"""

#: Marks every visible control (links, buttons, fields) with data-kb and returns how many there are.
MARK_CONTROLS = """() => {
  const all = [...document.querySelectorAll("a[href], button, input, textarea, select")]
    .filter((e) => e.getClientRects().length > 0);
  all.forEach((e, n) => { e.dataset.kb = String(n); });
  return all.length;
}"""


def unreachable_by_keyboard(page: Any) -> list[str]:
    """Tab from the top of the page through every control; returns those Tab never reached."""
    count: int = page.evaluate(MARK_CONTROLS)
    page.locator("a.skip").focus()
    reached = {page.evaluate("document.activeElement.dataset.kb")}
    for _ in range(count + 2):  # one press per control, bounded
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && document.activeElement.dataset.kb"))
    missing: list[str] = page.evaluate(
        "(seen) => [...document.querySelectorAll('[data-kb]')].filter((e) => !seen.includes(e.dataset.kb))"
        ".map((e) => e.outerHTML.slice(0, 120))", [r for r in reached if r is not None])
    return missing


def sign_in(page: Any, credential: str) -> None:
    """Fill the sign-in form with an access key or connection string and submit it."""
    page.get_by_label("Access key or connection string").fill(credential)
    page.get_by_role("button", name="Sign in").click()


@contextmanager
def explorer(browser: Any, endpoint: str, credential: str | None = None, *, path: str = "/explorer/",
             **context_options: Any) -> Iterator[tuple[Any, list[str]]]:
    """The Explorer in a fresh browser context (its own cookies), closed on exit.

    Args:
        browser: the Playwright browser (the ``browser`` fixture).
        endpoint: the server's http or https endpoint.
        credential: sign in with this access key or connection string (and wait until signed in);
            None leaves the sign-in form open.
        path: the Explorer's path on the server.
        context_options: for ``browser.new_context`` (viewport, permissions, ignore_https_errors...).

    Yields:
        The page, and the console errors and uncaught exceptions it reports (appended as they come).
    """
    from playwright.sync_api import expect

    context = browser.new_context(**context_options)
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{endpoint}{path}")
        if credential is not None:
            sign_in(page, credential)
            expect(page.get_by_role("navigation", name="Views")).to_be_visible()
        yield page, problems
    finally:
        context.close()
