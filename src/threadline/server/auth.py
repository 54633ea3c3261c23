"""Authentication: Bearer user tokens for chat, HMAC-SHA256 for identity."""

from __future__ import annotations

import time
from urllib.parse import unquote

from threadline.identity import hmac as signing
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.server.services.actor import Actor

from .endpoint import Call

__all__ = ["MAX_SKEW_SECONDS", "admit", "bearer_actor", "verify_hmac"]

#: How far ``x-ms-date`` may be from the server's clock.
MAX_SKEW_SECONDS = 15 * 60


async def bearer_actor(call: Call) -> Actor:
    """The user behind ``Authorization: Bearer <token>``, admitted to the route's rate budgets.

    Authentication comes first; then :func:`admit` charges the operation's budgets
    (on a thread route, only once the user is known to be a member), before the
    route reads its body.

    Raises:
        ChatServiceError: 401 for a missing, bad, expired or revoked token; on a
            throttled thread route 404/403 for an unknown thread or a non-member;
            429 when a budget is spent.
    """
    header = call.header("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ChatServiceError(ErrorKind.UNAUTHORIZED)
    actor: Actor = await call.state.identity.authenticate(token.strip())
    await admit(call, actor)
    return actor


async def admit(call: Call, actor: Actor | None) -> None:
    """Charge the route's rate budgets to an authenticated caller (``services/admission.py``).

    Args:
        call: the request; its ``thread_id`` path parameter names the thread, if any.
        actor: the chat user, or None for an identity request whose signature verified.

    Raises:
        ChatServiceError: 400 NUL in the thread id; 404/403 not a member of the thread;
            429 when a budget is spent.
    """
    admission = getattr(call.state, "admission", None)
    if admission is None or not admission.charges(call.operation):
        return  # nothing to charge: not even the thread id is read
    thread_id = call.path("thread_id") if "thread_id" in call.request.path_params else None
    call.ticket = await admission.admit(call.operation, actor, thread_id)


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
