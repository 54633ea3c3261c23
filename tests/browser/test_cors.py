"""CORS on every route and ``//`` path normalisation, against a real server on both engines."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import RunningServer
from tests.support import new_user

PAGE = "http://page.example:5173"
SDK_HEADERS = (
    "authorization,content-type,x-ms-client-request-id,x-ms-useragent,x-ms-date,x-ms-content-sha256,"
    "repeatability-request-id,x-skypetoken,image-filename"
)

#: (method, path) pairs covering chat, identity, health, real-time and the browser notification channel.
ROUTES = [
    ("POST", "/chat/threads"),
    ("GET", "/chat/threads/19:x@thread.v2/messages"),
    ("PATCH", "/chat/threads/19:x@thread.v2/messages/1"),
    ("DELETE", "/chat/threads/19:x@thread.v2"),
    ("POST", "/identities"),
    ("POST", "/identities/8:acs:x/:issueAccessToken"),
    ("GET", "/health"),
    ("GET", "/chat/realtime"),
    ("GET", "/chat/config/realTimeNotifications"),
    ("POST", "/trouter/v4/a"),
    ("POST", "/registrar/v3/registrations"),
    ("DELETE", "/registrar/v3/registrations/abc"),
    ("GET", "//chat/threads"),
    ("PUT", "/no/such/path"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_preflight_is_answered_for_every_route(server: RunningServer, method: str, path: str) -> None:
    response = requests.options(server.http_endpoint + path, headers={
        "Origin": PAGE, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": SDK_HEADERS,
    }, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert method in response.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].lower().split(",")}
    assert set(SDK_HEADERS.split(",")) <= allowed
    assert "access-control-allow-credentials" not in response.headers


def test_answers_carry_allow_origin_and_exposed_headers(server: RunningServer) -> None:
    user = new_user(server)
    ok = requests.get(f"{server.http_endpoint}/chat/threads?api-version=2024-03-07",
                      headers={"Origin": PAGE, "Authorization": f"Bearer {user.token}"}, timeout=10)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip() for h in ok.headers["access-control-expose-headers"].lower().split(",")}
    assert {"location", "retry-after", "x-ms-error-code", "www-authenticate"} <= exposed
    denied = requests.get(f"{server.http_endpoint}/chat/threads?api-version=2024-03-07",
                          headers={"Origin": PAGE}, timeout=10)
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == "*"
    health = requests.get(f"{server.http_endpoint}/health", headers={"Origin": PAGE}, timeout=10)
    assert health.headers["access-control-allow-origin"] == "*"


def test_double_slash_paths_are_served(server: RunningServer) -> None:
    user = new_user(server)
    auth = {"Authorization": f"Bearer {user.token}"}
    created = requests.post(f"{server.http_endpoint}//chat/threads?api-version=2024-03-07", headers=auth,
                            json={"topic": "slashes"}, timeout=10)
    assert created.status_code == 201, created.text
    thread_id = created.json()["chatThread"]["id"]
    listed = requests.get(f"{server.http_endpoint}///chat/threads/{thread_id}?api-version=2024-03-07",
                          headers=auth, timeout=10)
    assert listed.status_code == 200
    assert listed.json()["topic"] == "slashes"


def test_allowed_origins_can_be_restricted(start_server) -> None:  # type: ignore[no-untyped-def]
    running: RunningServer = start_server("--cors-origins", "https://app.example, http://localhost:5173/")
    allowed = requests.options(f"{running.http_endpoint}/chat/threads", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }, timeout=10)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    refused = requests.options(f"{running.http_endpoint}/chat/threads", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
    }, timeout=10)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    plain = requests.get(f"{running.http_endpoint}/health", headers={"Origin": "https://evil.example"}, timeout=10)
    assert plain.status_code == 200
    assert "access-control-allow-origin" not in plain.headers


def test_double_slash_identity_request_keeps_its_signature(server: RunningServer) -> None:
    import time

    from threadline.identity.hmac import decode_key, sign

    target = "//identities?api-version=2023-10-01"
    host = server.http_endpoint.removeprefix("http://")
    body = b'{"createTokenWithScopes":["chat"]}'
    headers = sign(decode_key(server.access_key), "POST", target, host, body, time.time())
    response = requests.post(f"{server.http_endpoint}{target}", data=body, timeout=10,
                             headers={**headers, "Content-Type": "application/json", "Origin": PAGE})
    assert response.status_code == 201, response.text
    assert response.json()["identity"]["id"].startswith("8:acs:")
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_bad_origin_setting_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "threadline", "serve", "--data", str(tmp_path / "d"),
                           "--http-port", "0", "--https-port", "-1", "--cors-origins", "ftp://x"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("threadline serve: error: --cors-origins: not an origin (scheme://host[:port]): "
                                   "'ftp://x'; use * or comma-separated origins such as https://app.example")


def test_routing_errors_carry_cors_headers_and_a_request_without_origin_gets_none(server: RunningServer) -> None:
    """A page reads the ACS body of a 404 or 405 (not a CORS failure); a request without Origin needs no CORS."""
    missing = requests.get(f"{server.http_endpoint}/no/such/path", headers={"Origin": PAGE}, timeout=10)
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "*"
    assert missing.headers["x-ms-error-code"] == missing.json()["error"]["code"]
    wrong = requests.put(f"{server.http_endpoint}/health", headers={"Origin": PAGE}, timeout=10)
    assert wrong.status_code == 405
    assert wrong.headers["access-control-allow-origin"] == "*"
    assert wrong.headers["x-ms-error-code"] == "MethodNotAllowed"
    assert "GET" in wrong.headers["allow"]
    plain = requests.get(f"{server.http_endpoint}/no/such/path", timeout=10)
    assert plain.status_code == 404
    assert plain.headers["x-ms-error-code"] == plain.json()["error"]["code"]
    assert not any(name.lower().startswith("access-control-") for name in plain.headers)
    health = requests.get(f"{server.http_endpoint}/health", timeout=10)
    assert health.status_code == 200
    assert not any(name.lower().startswith("access-control-") for name in health.headers)
