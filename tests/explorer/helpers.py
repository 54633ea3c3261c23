"""Calling the admin API as scripts do (HMAC-signed) and as the Explorer does (session + CSRF)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests

from threadline.identity import hmac as signing

from ..conftest import RunningServer

VERSION = "2026-11-28"


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
