"""The one ASGI layer in front of the router: paths, CORS, routing errors, the real-time socket.

Starlette's default stack puts five layers around every request (its server-error
and exception middlewares, CORS, and two of ours), each a coroutine frame and most
a wrapper of ``send``: together about a fifth of a small request's cost. This layer
does their work in one frame and wraps ``send`` only when a response needs
changing:

* ``//chat/...`` is routed as ``/chat/...`` (the JS SDK appends paths to an endpoint
  that may end in ``/``); ``raw_path`` stays as sent, since an HMAC-signed request
  signed the target it sent.
* A request carrying ``Origin`` goes through Starlette's CORS middleware (``cors.py``
  configures it); one without needs no CORS header and skips it.
* The router's 404 and 405 (raised as ``HTTPException`` before any answer starts)
  are answered in the ACS shape by ``on_http_error``, inside the CORS layer, so a
  page can read them.
* WebSocket scopes keep the server's own ``send`` in ``threadline.raw_send`` (a stalled
  connection's transport can then be aborted, which ASGI cannot do), and
  ``/chat/realtime`` is served from here without the router's frames on every idle
  connection.

Anything else that escapes is the server's to answer: uvicorn logs it and, if no
answer has started, sends a plain 500 (as Starlette's server-error layer did).
Every route catches its own errors (``endpoint.py``), so that is a bug's path only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from .realtime import PATH as REALTIME_PATH

__all__ = ["Edge"]

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class Edge:
    """The outermost ASGI application of the server (see the module).

    Args:
        app: the router.
        cors: wraps an ASGI app in Starlette's CORS middleware (``cors.cors_middleware``'s settings).
        on_http_error: answers an ``HTTPException`` raised by routing (404, 405).
    """

    def __init__(self, app: ASGIApp, cors: Callable[[ASGIApp], ASGIApp], on_http_error: ErrorHandler) -> None:
        self.app = app
        self.on_http_error = on_http_error
        #: the routed app behind CORS, so a 404/405 answer carries the CORS headers too
        self.cors = cors(self._routed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection scope."""
        kind = scope["type"]
        if kind == "http":
            path: str = scope["path"]
            if path.startswith("//"):
                scope = {**scope, "path": "/" + path.lstrip("/")}
            if _has_origin(scope):
                await self.cors(scope, receive, send)
            else:
                await self._routed(scope, receive, send)
            return
        if kind == "websocket":
            path = scope["path"]
            if path.startswith("//"):
                scope = {**scope, "path": "/" + path.lstrip("/")}
            scope["threadline.raw_send"] = send
            if scope["path"] == REALTIME_PATH:
                await scope["app"].state.realtime.serve(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)

    async def _routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route an HTTP request; routing's 404/405 (raised before anything was sent) in the ACS shape."""
        try:
            await self.app(scope, receive, send)
        except HTTPException as exc:
            response = await self.on_http_error(Request(scope, receive, send), exc)
            await response(scope, receive, send)


def _has_origin(scope: Scope) -> bool:
    """Whether the request carries an ``Origin`` header (header names arrive lower-cased)."""
    return any(name == b"origin" for name, _ in scope["headers"])
