"""Who may call ``/admin``: an HMAC-signed request, or an Explorer session with its CSRF token.

Scripts sign admin requests with the access key exactly as the identity API
is signed (:func:`threadline.server.auth.verify_hmac`). The Explorer signs in
once with the access key and then holds a short-lived session:

* the session is a signed cookie, nothing is stored on the server: the cookie
  holds a random session id and its expiry, signed (HMAC-SHA256) with a key
  derived from the access key, so every node and worker that shares the key
  accepts it and rotating the key ends every session;
* the cookie is ``HttpOnly``, ``SameSite=Strict`` (``Secure`` over HTTPS),
  and scoped to ``/admin`` and ``/explorer`` (one cookie for each path): the
  chat API never sees it;
* every state-changing call made with the session (any method but GET/HEAD)
  must carry ``X-Threadline-CSRF`` equal to the session's CSRF token (derived
  from the session id; the sign-in answer and ``GET /admin/session`` hand it
  to the page), and an ``Origin`` header, when the browser sends one, must be
  this server's own. A cross-site page gets neither the cookie nor the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgspec

from threadline.protocol.errors import ChatServiceError, ErrorKind

from .auth import verify_hmac
from .endpoint import Call

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "SESSION_SECONDS",
    "Session",
    "authorize",
    "authorized_body",
    "clear_cookies",
    "new_session",
    "read_session",
    "require_csrf",
    "session_cookies",
    "session_of",
]

#: The session cookie's name.
COOKIE = "threadline_explorer"
#: The header that must carry the CSRF token on state-changing session calls.
CSRF_HEADER = "x-threadline-csrf"
#: How long a session lasts (no sliding renewal: sign in again).
SESSION_SECONDS = 3600
#: The paths the cookie is sent to.
COOKIE_PATHS = ("/admin", "/explorer")
_SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Session:
    """A verified Explorer session.

    Attributes:
        session_id: random, fixed for the session's life.
        expires_at: epoch seconds after which the cookie is refused.
        csrf_token: what ``X-Threadline-CSRF`` must hold.
    """

    session_id: str
    expires_at: int
    csrf_token: str


def _session_key(access_key: bytes) -> bytes:
    return hmac.new(access_key, b"threadline-explorer-session-v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _csrf(key: bytes, session_id: str) -> str:
    return _b64(hmac.new(key, b"csrf:" + session_id.encode(), hashlib.sha256).digest())


def new_session(access_key: bytes, now: float | None = None) -> tuple[str, Session]:
    """Open a session: the cookie value and what it stands for."""
    key = _session_key(access_key)
    session_id = secrets.token_urlsafe(18)
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    payload = _b64(msgspec.json.encode({"sid": session_id, "exp": expires}))
    mac = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{mac}", Session(session_id, expires, _csrf(key, session_id))


def read_session(value: str | None, access_key: bytes, now: float | None = None) -> Session | None:
    """The session a cookie value proves, or None when absent, forged, malformed or expired."""
    if not value or len(value) > 512 or value.count(".") != 1:
        return None
    key = _session_key(access_key)
    payload, mac = value.split(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, mac):
        return None
    try:
        data = msgspec.json.decode(_unb64(payload))
        session_id, expires = data["sid"], data["exp"]
    except (binascii.Error, ValueError, msgspec.DecodeError, KeyError, TypeError):
        return None
    if not isinstance(session_id, str) or not isinstance(expires, int):
        return None
    if expires <= (now if now is not None else time.time()):
        return None
    return Session(session_id, expires, _csrf(key, session_id))


def session_cookies(value: str, *, secure: bool, max_age: int = SESSION_SECONDS) -> list[str]:
    """The ``Set-Cookie`` values that hand the session to ``/admin`` and ``/explorer``."""
    flags = f"HttpOnly; SameSite=Strict; Max-Age={max_age}" + ("; Secure" if secure else "")
    return [f"{COOKIE}={value}; Path={path}; {flags}" for path in COOKIE_PATHS]


def clear_cookies(*, secure: bool) -> list[str]:
    """The ``Set-Cookie`` values that remove the session cookies."""
    return session_cookies("", secure=secure, max_age=0)


def _same_origin(call: Call) -> bool:
    origin = call.header("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc == (call.header("host") or "")


def session_of(call: Call) -> Session | None:
    """The request's valid Explorer session, if it carries one."""
    return read_session(call.request.cookies.get(COOKIE), call.state.settings.key_bytes)


def require_csrf(call: Call, session: Session) -> None:
    """Refuse a state-changing session call without the session's CSRF token or from another origin.

    Raises:
        ChatServiceError: 403 ``CsrfTokenMismatch`` / ``CrossOriginRequest``.
    """
    if call.request.method in _SAFE_METHODS:
        return
    if not _same_origin(call):
        raise ChatServiceError(ErrorKind.FORBIDDEN, "The request comes from another origin.",
                               code="CrossOriginRequest")
    provided = call.header(CSRF_HEADER) or ""
    if not hmac.compare_digest(provided.encode(), session.csrf_token.encode()):
        raise ChatServiceError(ErrorKind.FORBIDDEN, f"The {CSRF_HEADER} header is missing or wrong.",
                               code="CsrfTokenMismatch", target=CSRF_HEADER)


def authorize(call: Call, body: bytes) -> Session | None:
    """Let an admin request through: HMAC-signed (returns None) or an Explorer session (returns it).

    A request with an ``Authorization`` header is judged by its signature alone.

    Raises:
        ChatServiceError: 401 without a valid signature or session; 403 for a session
            call that fails the CSRF rules.
    """
    if call.header("authorization") is not None:
        verify_hmac(call, body, call.state.settings.key_bytes)
        return None
    session = session_of(call)
    if session is None:
        raise ChatServiceError(ErrorKind.UNAUTHORIZED, "Sign the request with the access key or sign in.")
    require_csrf(call, session)
    return session


async def authorized_body(call: Call) -> bytes:
    """Read the request body and let the admin request through (``authorize``); returns the body.

    Raises:
        ChatServiceError: as ``authorize``.
    """
    body = await call.body()
    authorize(call, body)
    return body
