"""The Explorer's session on both engines: sign-in, cookie flags and scope, CSRF and origin rules, the pages' CSP."""

from __future__ import annotations

import base64
import secrets

import requests

from threadline.identity.hmac import decode_key
from threadline.server.admin_session import new_session, read_session

from ..conftest import RunningServer
from .helpers import ExplorerSession, acs_error, admin_url


def test_sign_in_sets_a_strict_http_only_cookie_for_admin_and_explorer_only(server: RunningServer) -> None:
    session = ExplorerSession(server)
    cookies = session.sign_in.raw.headers.getlist("set-cookie")
    assert len(cookies) == 2
    assert {c.split("; Path=")[1].split(";")[0] for c in cookies} == {"/admin", "/explorer"}
    for cookie in cookies:
        flags = [f.strip() for f in cookie.split(";")]
        assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Max-Age=3600" in flags
    assert session.sign_in.json()["expiresOn"].endswith("Z")
    # The cookie reaches /admin, never the chat API.
    assert session.get("/admin/status").status_code == 200
    jar_paths = {c.path for c in session.http.cookies}
    assert jar_paths == {"/admin", "/explorer"}
    assert session.get("/admin/session").json()["csrfToken"] == session.csrf


def test_the_cookie_is_secure_over_https(server: RunningServer) -> None:
    url = f"{server.https_endpoint}/admin/session?api-version=2026-11-28"
    answer = requests.post(url, json={"accessKey": server.access_key}, verify=server.cert_path, timeout=30)
    assert answer.status_code == 200, answer.text
    cookies = answer.raw.headers.getlist("set-cookie")
    assert len(cookies) == 2 and all("; Secure" in c for c in cookies)


def test_sign_in_with_a_connection_string_and_refusals(server: RunningServer) -> None:
    url = admin_url(server, "/admin/session")
    ok = requests.post(url, json={"connectionString": server.connection_string}, timeout=30)
    assert ok.status_code == 200 and "threadline_explorer=" in ok.headers["set-cookie"]
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    for body in ({"accessKey": wrong}, {"accessKey": "not base64!"},
                 {"connectionString": f"endpoint=https://x/;accesskey={wrong}"}):
        refused = requests.post(url, json=body, timeout=30)
        acs_error(refused, 401)
        assert "set-cookie" not in refused.headers
    acs_error(requests.post(url, json={}, timeout=30), 400)
    acs_error(requests.post(url, json={"connectionString": "endpoint=https://x/"}, timeout=30), 400)
    # A form post (what a cross-site page could send without CORS) is refused.
    form = requests.post(url, data={"accessKey": server.access_key}, timeout=30)
    acs_error(form, 400)
    assert "set-cookie" not in form.headers
    acs_error(requests.get(url, timeout=30), 401)


def test_state_changes_need_the_csrf_token_and_this_origin(server: RunningServer) -> None:
    session = ExplorerSession(server)
    acs_error(session.post("/admin/identities", csrf=None), 403, "CsrfTokenMismatch")
    altered = ("B" if session.csrf[0] == "A" else "A") + session.csrf[1:]
    acs_error(session.post("/admin/identities", csrf=altered), 403, "CsrfTokenMismatch")
    origin = server.http_endpoint.replace("127.0.0.1", "localhost")
    acs_error(session.post("/admin/identities", Origin=origin), 403, "CrossOriginRequest")
    acs_error(session.post("/admin/identities", Origin="https://evil.example"), 403, "CrossOriginRequest")
    created = session.post("/admin/identities", {"createTokenWithScopes": ["chat"]}, Origin=server.http_endpoint)
    assert created.status_code == 201, created.text
    assert created.json()["accessToken"]["token"] and created.json()["identity"]["id"].startswith("8:acs:")
    # Another session's token does not fit this session.
    other = ExplorerSession(server)
    assert other.csrf != session.csrf
    acs_error(session.post("/admin/identities", csrf=other.csrf), 403, "CsrfTokenMismatch")


def test_sign_out_clears_the_cookies(server: RunningServer) -> None:
    session = ExplorerSession(server)
    acs_error(session.http.delete(admin_url(server, "/admin/session"), timeout=30), 403, "CsrfTokenMismatch")
    out = session.http.delete(admin_url(server, "/admin/session"), headers={"X-Threadline-CSRF": session.csrf},
                              timeout=30)
    assert out.status_code == 204
    cleared = out.raw.headers.getlist("set-cookie")
    assert len(cleared) == 2 and all("Max-Age=0" in c for c in cleared)
    acs_error(session.get("/admin/threads"), 401)


def test_forged_expired_and_foreign_cookies_are_refused(server: RunningServer) -> None:
    key = decode_key(server.access_key)
    value, _ = new_session(key)
    payload, mac = value.split(".")
    expired, _ = new_session(key, now=0)
    foreign, _ = new_session(secrets.token_bytes(32))
    forged_payload = base64.urlsafe_b64encode(b'{"sid":"x","exp":99999999999}').decode().rstrip("=")
    for bad in (f"{forged_payload}.{mac}", expired, foreign, "garbage", f"{payload}.{mac}x"):
        answer = requests.get(admin_url(server, "/admin/threads"), cookies={"threadline_explorer": bad}, timeout=30)
        acs_error(answer, 401)
    good = requests.get(admin_url(server, "/admin/threads"), cookies={"threadline_explorer": value}, timeout=30)
    assert good.status_code == 200
    assert read_session(value, key) is not None and read_session(value, secrets.token_bytes(32)) is None


def test_explorer_pages_carry_a_strict_csp(server: RunningServer) -> None:
    root = requests.get(f"{server.http_endpoint}/explorer", allow_redirects=False, timeout=30)
    assert root.status_code == 308 and root.headers["location"] == "/explorer/"
    for name in ("", "app.js", "api.js", "dom.js", "live.js", "threads.js", "images.js", "webhooks.js", "style.css"):
        page = requests.get(f"{server.http_endpoint}/explorer/{name}", timeout=30)
        assert page.status_code == 200, name
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp and page.headers["x-content-type-options"] == "nosniff"
    assert "text/html" in requests.get(f"{server.http_endpoint}/explorer/", timeout=30).headers["content-type"]
    acs_error(requests.get(f"{server.http_endpoint}/explorer/..%2Fapp.py", timeout=30), 404)
    acs_error(requests.get(f"{server.http_endpoint}/explorer/nothing.js", timeout=30), 404)
