"""uvicorn's HTTP and WebSocket protocols, guarded against slow and greedy clients.

uvicorn bounds neither the time a client may take to send its request head or
body nor the number of open connections (``limit_concurrency`` answers a
plain-text 503 to every request, ``/health`` included, once the cap is
reached, and still holds the sockets); it answers malformed or over-long heads
with a plain-text 400. Configuring cannot change that, so these subclasses of
the protocols ``threadline serve`` runs (httptools for HTTP/1.1, the sans-I/O
``websockets`` implementation for WebSockets) add, per connection:

* a deadline for the request head (from the accept, or from the first byte of
  a keep-alive request, to the end of the headers): ``408`` then close;
* a deadline for the request body (from the end of the headers to the end of
  the body): ``408`` then close, and the route sees a disconnect;
* a cap on the request target (``414``) and on the whole head (``431``);
* the process-wide connection cap of :class:`~.connlimits.ConnectionLimiter`
  (``503`` beyond it);

and every answer they write themselves is an ACS error body with
``x-ms-error-code``. The h11 implementation is not used (httptools is faster
and installed with ``uvicorn[standard]``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from threadline.protocol.errors import error_body
from threadline.protocol.wire import encode

from . import metrics
from .coalesce import HeldHead
from .connlimits import ConnectionLimiter

__all__ = ["GuardOptions", "guarded_protocols", "raw_error"]

#: How long a refused connection may stay open to read the client's request before it is aborted.
_REFUSE_LINGER_SECONDS = 1.0

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 414: b"URI Too Long",
            431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


@dataclass(frozen=True, slots=True)
class GuardOptions:
    """Deadlines and sizes of the connection layer (see ``docs/limits.md``).

    Attributes:
        header_timeout_seconds: time allowed for a request head.
        body_timeout_seconds: time allowed for a request body, after its head.
        max_request_line_bytes: the longest request target (path and query).
        max_head_bytes: the largest request head (request line and headers).
    """

    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    max_request_line_bytes: int = 16 * 1024
    max_head_bytes: int = 64 * 1024


def raw_error(status: int, code: str, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A complete HTTP/1.1 response with the ACS error body that closes the connection.

    Args:
        status: the HTTP status.
        code: the ACS error code (also sent as ``x-ms-error-code``).
        message: the human-readable message.
        extra: more headers.

    Returns:
        The bytes to write to the transport.
    """
    body = encode(error_body(code, message))
    lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Error")),
             b"content-type: application/json; charset=utf-8",
             b"content-length: %d" % len(body), b"x-ms-error-code: " + code.encode(), b"connection: close"]
    lines += [name + b": " + value for name, value in extra]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Rejected(Exception):
    """Raised inside a parser callback to stop parsing a head that is too large."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines, size caps and the connection cap."""

    limiter: ClassVar[ConnectionLimiter]
    guard: ClassVar[GuardOptions]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_size = 0
        self._awaiting_head = True
        self._head_started = False
        self._refused = False
        self._rejection: tuple[int, str, str, str] | None = None

    # -- timers -------------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._head_started and (self.cycle is None or self.cycle.response_complete):
            metrics.http_rejected("header_timeout")
            seconds = self.guard.header_timeout_seconds
            self.transport.write(raw_error(
                408, "RequestTimeout", f"The request head did not arrive within {seconds:g} seconds."))
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        metrics.http_rejected("body_timeout")
        if not cycle.response_started:
            seconds = self.guard.body_timeout_seconds
            cycle.scope["threadline.read_timeout"] = True  # type: ignore[typeddict-unknown-key]
            self.transport.write(raw_error(
                408, "RequestTimeout", f"The request body did not arrive within {seconds:g} seconds."))
        # The route reading the body sees a disconnect; whatever it answers is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()

    # -- connection ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Admit the connection under the cap (or refuse it with 503) and start the head deadline."""
        if not self.limiter.admit(transport):
            self._refused = True
            self.transport = transport
            transport.write(raw_error(
                503, "ServiceUnavailable", "The server has too many open connections; retry shortly.",
                ((b"retry-after", b"1"),)))
            # Read (and drop) what the client sends for a moment, so closing does not reset the
            # connection before the client has read the answer.
            self._timer = self.loop.call_later(_REFUSE_LINGER_SECONDS, transport.abort)
            return
        super().connection_made(transport)
        self._arm(self.guard.header_timeout_seconds, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the connection's place."""
        self._disarm()
        if self._refused:
            return
        self.limiter.release(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, counting the bytes of the request head against its cap."""
        if self._refused:
            return
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._awaiting_head and self._head_bytes > self.guard.max_head_bytes and not self.transport.is_closing():
            self._rejection = self._head_too_large()
            self.send_400_response("")

    def _head_too_large(self) -> tuple[int, str, str, str]:
        return (431, "RequestHeaderFieldsTooLarge", f"The request head exceeds {self.guard.max_head_bytes} bytes.",
                "headers_too_large")

    def send_400_response(self, msg: str) -> None:
        """Answer a head the server cannot take, in the ACS shape, and close."""
        self._disarm()
        status, code, message, reason = self._rejection or (
            400, "BadRequest", "The request is not valid HTTP/1.1.", "malformed")
        metrics.http_rejected(reason)
        self.transport.write(raw_error(status, code, message))
        self.transport.close()

    def handle_websocket_upgrade(self) -> None:
        """Hand the connection to the WebSocket protocol; its deadlines end here."""
        self._disarm()
        super().handle_websocket_upgrade()

    # -- parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request starts: its head has the head deadline (armed at accept for the first one)."""
        super().on_message_begin()
        self._head_size = 0
        self._head_started = True
        self._awaiting_head = True
        if self._timer is None:
            self._arm(self.guard.header_timeout_seconds, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        """Collect the request target, refusing one past the cap."""
        super().on_url(url)
        if len(self.url) > self.guard.max_request_line_bytes:
            self._rejection = (414, "RequestUriTooLong",
                               f"The request target exceeds {self.guard.max_request_line_bytes} bytes.",
                               "uri_too_long")
            raise _Rejected

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect a header, refusing a head past the cap (one that arrived in a single read)."""
        super().on_header(name, value)
        self._head_size += len(name) + len(value) + 4
        if self._head_size + len(self.url) > self.guard.max_head_bytes:
            self._rejection = self._head_too_large()
            raise _Rejected

    def on_headers_complete(self) -> None:
        """The head is in: the connection is busy, and the body deadline starts."""
        self._disarm()
        self._awaiting_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        if self.parser.should_upgrade() and self._should_upgrade():
            return
        if self.cycle is not None:  # the cycle just made for this request: one write for head and body
            self.cycle.transport = HeldHead(self.transport, self.loop)  # type: ignore[assignment]
        self.limiter.busy(self.transport)
        self._arm(self.guard.body_timeout_seconds, self._body_timed_out)

    def on_message_complete(self) -> None:
        """The body is in: no deadline until the next request starts."""
        super().on_message_complete()
        self._disarm()
        self._awaiting_head = True
        self._head_started = False
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        """The answer is out: an idle keep-alive connection may be shed at the cap."""
        super().on_response_complete()
        if not self.pipeline and not self.transport.is_closing():
            self.limiter.idle(self.transport)


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, holding its connection's place under the cap until it closes."""

    limiter: ClassVar[ConnectionLimiter]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Take over the upgraded connection; an open WebSocket is never shed."""
        super().connection_made(transport)
        self.limiter.busy(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the connection's place."""
        try:
            super().connection_lost(exc)
        finally:
            self.limiter.release(self.transport)


def guarded_protocols(
    limiter: ConnectionLimiter, options: GuardOptions,
) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol]]:
    """The HTTP and WebSocket protocol classes to give uvicorn (``http=``, ``ws=``).

    Args:
        limiter: the process's connection cap, shared by every listener.
        options: deadlines and sizes.

    Returns:
        The HTTP protocol class and the WebSocket protocol class.
    """
    http = type("ThreadlineHttpProtocol", (GuardedHttpProtocol,), {"limiter": limiter, "guard": options})
    ws = type("ThreadlineWebSocketProtocol", (GuardedWebSocketProtocol,), {"limiter": limiter})
    return http, ws
