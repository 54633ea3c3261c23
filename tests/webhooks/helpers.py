"""Helpers of the webhook tests: servers configured for loopback receivers, the signed admin API."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from threadline.identity import hmac as signing

from ..conftest import RunningServer, serving

#: Loopback receivers allowed, fast polling, Event Grid's schedule shrunk 100x, short leases.
WEBHOOK_ENV = {
    "THREADLINE_THROTTLE": "off",
    "THREADLINE_WEBHOOK_ALLOW": "127.0.0.1/32",
    "THREADLINE_WEBHOOK_POLL_MS": "30",
    "THREADLINE_WEBHOOK_RETRY_SCALE": "0.01",
    "THREADLINE_WEBHOOK_LEASE_SECONDS": "3",
    "THREADLINE_WEBHOOK_TIMEOUT": "2",
}


@contextlib.contextmanager
def webhook_server(engine: str, data: Path, **env: str) -> Iterator[RunningServer]:
    """A server on an engine with :data:`WEBHOOK_ENV` (plus ``env``)."""
    with serving(engine, data, env={**WEBHOOK_ENV, **env}) as running:
        yield running


def admin(server: RunningServer, method: str, path: str, body: Any = None,
          api_version: str = "2025-03-15") -> requests.Response:
    """Call the admin API signed with the access key, as the identity SDK signs."""
    raw = b"" if body is None else requests.models.complexjson.dumps(body).encode()
    sep = "&" if "?" in path else "?"
    target = f"{path}{sep}api-version={api_version}"
    url = server.http_endpoint + target
    host = urlsplit(url).netloc
    headers = signing.sign(base64.b64decode(server.access_key), method, target, host, raw, time.time())
    headers["Content-Type"] = "application/json"
    return requests.request(method, url, data=raw, headers=headers, timeout=10)


def subscribe(server: RunningServer, url: str, **options: Any) -> dict[str, Any]:
    """Add a subscription through the admin API and return it."""
    answer = admin(server, "POST", "/admin/webhooks", {"url": url, **options})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def wait_active(server: RunningServer, sub_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if admin(server, "GET", f"/admin/webhooks/{sub_id}").json()["status"] == "active":
            return
        time.sleep(0.05)
    raise AssertionError("the subscription never became active")


@contextlib.contextmanager
def engine_args(engine: str) -> Iterator[list[str]]:
    """``serve`` flags naming one database (and Redis channel) that outlives server restarts."""
    if engine == "sqlite":
        yield []
        return
    import secrets

    from ..pg import REDIS_URL, fresh_database, require_postgres, require_redis

    require_postgres()
    require_redis()
    with fresh_database("threadline_webhooks") as url:
        yield ["--database", url, "--events", f"{REDIS_URL}?channel=threadline-test:{secrets.token_hex(6)}"]


def leased_by(server: RunningServer, sub_id: str) -> bool:
    """Whether this server process reports holding the subscription's lease."""
    text = requests.get(f"{server.http_endpoint}/metrics", timeout=5).text
    return f'threadline_webhook_leased{{subscription="{sub_id}"}} 1.0' in text
