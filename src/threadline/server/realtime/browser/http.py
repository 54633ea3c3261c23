"""The HTTP side of the browser notification channel.

* ``GET /chat/config/realTimeNotifications`` (api-version 2024-09-01, bearer
  token): where the channel is, pointing back at this server as the client
  reached it.
* ``POST /trouter/v4/a`` (and ``/v4/a``, where reconnects without cached
  parameters go): allocate a session.
* ``GET /socket.io/1/``: the socket.io 0.9 handshake.
* ``GET|POST /socket.io/1/xhr-polling/<sid>``: the long-polling transport.
* ``POST /registrar/v3/registrations``, ``DELETE .../<id>``: the registrar
  (accepted; delivery does not depend on it).
* ``GET /?check=...``: the connectivity probe (body ``Trouter``).

Every request but the config one authenticates with ``X-Skypetoken`` (the
user's ACS token); nothing is kept for a request that does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from threadline.server.answers import json
from threadline.server.auth import bearer_actor
from threadline.server.endpoint import Call, endpoint

from . import frames
from .manager import BrowserRealtime, Refused
from .session import Session

__all__ = ["CONFIG_VERSIONS", "public_base", "routes"]

#: The api-version the signalling client asks the configuration with.
CONFIG_VERSIONS = ("2024-09-01",)
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
_MAX_POST = 1024 * 1024


def public_base(request: Request) -> str:
    """The scheme and authority the client used, behind a proxy too.

    ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (first value each) win over
    the connection's scheme and ``Host`` header; a malformed value is ignored.
    """
    scheme = request.url.scheme
    forwarded = (request.headers.get("x-forwarded-proto") or "").split(",")[0].strip().lower()
    if forwarded in ("http", "https"):
        scheme = forwarded
    elif scheme in ("ws", "wss"):
        scheme = "https" if scheme == "wss" else "http"
    host = (request.headers.get("x-forwarded-host") or "").split(",")[0].strip()
    if not _HOST.match(host):
        host = request.headers.get("host") or ""
    if not _HOST.match(host):
        host = f"{request.url.hostname}:{request.url.port}" if request.url.port else str(request.url.hostname)
    return f"{scheme}://{host}"


def _manager(request: Request) -> BrowserRealtime:
    manager: BrowserRealtime = request.app.state.browser_rt
    return manager


def _query(request: Request) -> dict[str, str]:
    return dict(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


def _refused(exc: Refused) -> Response:
    headers = {"WWW-Authenticate": 'Skypetoken realm="threadline"'} if exc.status == 401 else None
    return JSONResponse({"reason": exc.reason}, status_code=exc.status, headers=headers)


@endpoint(CONFIG_VERSIONS)
async def realtime_config(call: Call) -> Response:
    """``GET /chat/config/realTimeNotifications``: the Trouter and registrar URLs of this server."""
    await bearer_actor(call)
    base = public_base(call.request)
    return json(call, {
        "trouterServiceUrl": f"{base}/trouter",
        "registrarServiceUrl": f"{base}/registrar",
        "cloudType": "public",
    })


async def allocate(request: Request) -> Response:
    """``POST /v4/a``: a session's URLs and connect parameters."""
    try:
        body = await _manager(request).allocate(request.headers.get("x-skypetoken"), _query(request),
                                                 public_base(request))
    except Refused as exc:
        return _refused(exc)
    return JSONResponse(body)


async def handshake(request: Request) -> Response:
    """``GET /socket.io/1/``: create a session (``sid:heartbeat:close:transports``)."""
    try:
        text = await _manager(request).handshake(request.headers.get("x-skypetoken"), _query(request),
                                                 public_base(request))
    except Refused as exc:
        return _refused(exc)
    return PlainTextResponse(text)


async def _polled_session(request: Request) -> tuple[BrowserRealtime, Session] | Response:
    manager = _manager(request)
    try:
        claims = await manager.authenticate(request.headers.get("x-skypetoken"))
    except Refused as exc:
        return _refused(exc)
    session = manager.session_for(request.path_params["sid"], claims.user_id)
    if session is None:
        return PlainTextResponse(frames.disconnect(), status_code=404)
    return manager, session


async def poll(request: Request) -> Response:
    """``GET /socket.io/1/xhr-polling/<sid>``: what is queued, or ``8::`` after a while."""
    found = await _polled_session(request)
    if isinstance(found, Response):
        return found
    manager, session = found
    session.handle("2::")  # a poll is a sign of life
    session.attach(polling=True)
    if not session.outbox and not session.closed:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.wake.wait(), manager.options.poll_seconds)
    packets = session.take() or [frames.NOOP]
    return PlainTextResponse(frames.encode_payload(packets), media_type="text/plain; charset=UTF-8")


async def poll_send(request: Request) -> Response:
    """``POST /socket.io/1/xhr-polling/<sid>``: client packets (replies, acks, disconnect)."""
    found = await _polled_session(request)
    if isinstance(found, Response):
        return found
    _, session = found
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_POST:
            return PlainTextResponse("too large", status_code=413)
        chunks.append(chunk)
    for packet in frames.decode_payload(b"".join(chunks).decode("utf-8", "replace")):
        session.handle(packet)
    return PlainTextResponse("1")


async def register(request: Request) -> Response:
    """``POST /registrar/v3/registrations``: accepted for an authenticated user."""
    try:
        await _manager(request).authenticate(request.headers.get("x-skypetoken"))
    except Refused as exc:
        return _refused(exc)
    return JSONResponse({}, status_code=202)


async def unregister(request: Request) -> Response:
    """``DELETE /registrar/v3/registrations/<id>``."""
    try:
        await _manager(request).authenticate(request.headers.get("x-skypetoken"))
    except Refused as exc:
        return _refused(exc)
    return Response(status_code=200)


async def check(request: Request) -> Response:
    """``GET /?check=...``: the client's connectivity probe."""
    if "check" not in request.query_params:
        return JSONResponse({"error": {"code": "NotFound", "message": "No such resource or operation."}},
                            status_code=404, headers={"x-ms-error-code": "NotFound"})
    return PlainTextResponse("Trouter")


routes = [
    Route("/chat/config/realTimeNotifications", realtime_config, methods=["GET"]),
    Route("/trouter/v4/a", allocate, methods=["POST"]),
    Route("/v4/a", allocate, methods=["POST"]),
    Route("/socket.io/1/", handshake, methods=["GET"]),
    Route("/socket.io/1/xhr-polling/{sid}", poll, methods=["GET"]),
    Route("/socket.io/1/xhr-polling/{sid}", poll_send, methods=["POST"]),
    Route("/registrar/v3/registrations", register, methods=["POST"]),
    Route("/registrar/v3/registrations/{registration_id}", unregister, methods=["DELETE"]),
    Route("/", check, methods=["GET"]),
]
