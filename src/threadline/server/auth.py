"""Authentication: Bearer user tokens for chat, HMAC-SHA256 for identity."""

from __future__ import annotations

import time
from urllib.parse import unquote

from threadline.identity import hmac as signing
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.server.services.actor import Actor

from .endpoint import Call

__all__ = ["MAX_SKEW_SECONDS", "bearer_actor", "verify_hmac"]

#: How far ``x-ms-date`` may be from the server's clock.
MAX_SKEW_SECONDS = 15 * 60


async def bearer_actor(call: Call) -> Actor:
    """The user behind ``Authorization: Bearer <token>``.

    Raises:
        ChatServiceError: 401 for a missing, bad, expired or revoked token.
    """
    header = call.header("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ChatServiceError(ErrorKind.UNAUTHORIZED)
    actor: Actor = await call.state.identity.authenticate(token.strip())
    return actor


def verify_hmac(call: Call, body: bytes, key: bytes) -> None:
    """Check an HMAC-SHA256 signed request as the official SDKs sign it.

    Tries the raw and the percent-decoded request target, and the Host header
    with and without a default port or trailing slash (``official-sdk.md`` §5).

    Raises:
        ChatServiceError: 401 when the signature, date or content hash do not hold.
    """
    request = call.request
    provided = signing.parse_authorization(call.header("authorization") or "")
    date = call.header("x-ms-date") or call.header("date") or ""
    body_hash = call.header("x-ms-content-sha256") or ""
    if provided is None or not date or not body_hash:
        raise ChatServiceError(ErrorKind.UNAUTHORIZED)
    when = signing.parse_date(date)
    if when is None or abs(when - time.time()) > MAX_SKEW_SECONDS:
        raise ChatServiceError(ErrorKind.UNAUTHORIZED, "The x-ms-date header is missing or too far off.")
    if signing.content_hash(body) != body_hash:
        raise ChatServiceError(ErrorKind.UNAUTHORIZED, "The content hash does not match the body.")
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    targets = [f"{path}?{query}", f"{unquote(path)}?{query}", f"{unquote(path)}?{unquote(query)}"]
    host = call.header("host") or ""
    hosts = [host, host + "/"]
    scheme_port = ":443" if request.url.scheme == "https" else ":80"
    if host.endswith(scheme_port):
        hosts.append(host.removesuffix(scheme_port))
    else:
        hosts.append(host + scheme_port)
    if not signing.verify(key, request.method, targets, hosts, date, body_hash, provided):
        raise ChatServiceError(ErrorKind.UNAUTHORIZED)
