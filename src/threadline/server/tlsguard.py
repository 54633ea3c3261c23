"""The HTTPS listener's TLS handshake, held under the connection cap from the TCP accept.

Given an SSL context, the loop (uvloop or asyncio) runs the TLS handshake before
the HTTP protocol hears of the connection: a socket that connects and never
finishes its handshake held an open file and about 50 KB of TLS state for 60
seconds (the loop's handshake timeout) without counting against
``--max-connections``, so a stranger could open them far beyond the cap, up to
the open-file limit, where the listener stops accepting anyone.

So the HTTPS listener gets no SSL context, and its protocol factory returns a
:class:`_TlsGate` in front of each HTTP protocol. At the accept the gate takes an
*idle* place under the cap for the TCP connection (the oldest such connection, a
stalled handshake included, is shed to make room for a new one, exactly as a
connection that has not sent its request head yet), then hands the connection to
the loop's own TLS protocol (the one ``ssl=`` would have used, made the same way,
so the handshake and the encryption cost what they did) with a handshake timeout
of the request-head deadline. When the handshake ends the place goes to the TLS
connection and HTTP goes on as on the plain listener (head deadline, caps,
keep-alive, WebSocket upgrade); when it fails, the place is freed. At the cap with
every connection busy, a new TCP connection is closed at once: without a
handshake no ``503`` can be written.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import ssl
from collections.abc import Callable
from typing import Any, cast

from .connlimits import ConnectionLimiter
from .httpguard import GuardedHttpProtocol
from .tls import TlsFiles

__all__ = ["TlsGuardedHttpProtocol", "server_context", "tls_protocol"]


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The server's SSL context: its certificate and key, no client certificates (as uvicorn builds it).

    Raises:
        OSError: the files cannot be read.
        ssl.SSLError: the key does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(files.cert), str(files.key))
    context.verify_mode = ssl.CERT_NONE
    return context


def _tls_protocol_class(loop: asyncio.AbstractEventLoop) -> Any:
    """The TLS protocol the loop's own ``create_server(ssl=...)`` wraps accepted connections in."""
    try:
        import uvloop
        import uvloop.loop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.sslproto.SSLProtocol
    if isinstance(loop, uvloop.Loop):
        # Not in uvloop's type stubs nor its public API: should a release drop it, asyncio's own
        # protocol serves a uvloop transport too (checked by hand with uvloop 0.23), only slower.
        return getattr(uvloop.loop, "SSLProtocol", asyncio.sslproto.SSLProtocol)
    return asyncio.sslproto.SSLProtocol


class TlsGuardedHttpProtocol(GuardedHttpProtocol):
    """:class:`~.httpguard.GuardedHttpProtocol` behind a :class:`_TlsGate`: it takes its TCP connection's place."""

    #: The TCP connection under the handshake (set by the gate): its place under the cap is released
    #: when this protocol gets the TLS connection.
    tcp: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """The handshake is done: the TLS connection takes the TCP connection's place under the cap."""
        if self.tcp is not None:
            self.limiter.release(self.tcp)  # then admitting the TLS connection finds room
            self.tcp = None
        super().connection_made(transport)


class _TlsGate(asyncio.Protocol):
    """The first protocol of an accepted HTTPS connection: its place under the cap, then TLS (see the module)."""

    def __init__(self, http: TlsGuardedHttpProtocol, limiter: ConnectionLimiter, context: ssl.SSLContext,
                 handshake_seconds: float) -> None:
        self._http = http
        self._limiter = limiter
        self._context = context
        self._handshake_seconds = handshake_seconds

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Admit the TCP connection (or close it) and start TLS on it, as ``create_server(ssl=...)`` does."""
        transport = cast(asyncio.Transport, transport)
        if not self._limiter.admit(transport):
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        waiter.add_done_callback(lambda done: self._handshake_ended(done, transport))
        self._http.tcp = transport
        tls = _tls_protocol_class(loop)(
            loop, self._http, self._context, waiter, server_side=True,
            ssl_handshake_timeout=self._handshake_seconds,
        )
        # Before this returns, so the loop starts reading into the TLS protocol: no byte reaches the gate.
        transport.set_protocol(tls)
        tls.connection_made(transport)

    def _handshake_ended(self, waiter: asyncio.Future[None], tcp: asyncio.Transport) -> None:
        if not waiter.cancelled() and waiter.exception() is None:
            return
        # failed: not TLS, too slow, gone, or shed to make room (the HTTP protocol never started)
        self._http.tcp = None
        self._limiter.release(tcp)
        tcp.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """A connection refused at the cap closed (an admitted one belongs to the TLS protocol by then)."""

    def data_received(self, data: bytes) -> None:  # pragma: no cover - the TLS protocol reads from the start
        """Nothing to read: an admitted connection reads into its TLS protocol, a refused one is aborted."""


def tls_protocol(http: type[GuardedHttpProtocol], context: ssl.SSLContext) -> Callable[..., asyncio.Protocol]:
    """The HTTPS listener's protocol factory: a TLS gate in front of ``http``'s protocol (same cap and options).

    Args:
        http: the HTTP protocol class of :func:`~.httpguard.guarded_protocols` (its cap is shared).
        context: the server's SSL context (:func:`server_context`).

    Returns:
        What to give uvicorn as ``http=`` for a listener without ``ssl_*`` settings: called with
        uvicorn's protocol arguments, it returns the gate of one new connection.
    """
    secure = type("ThreadlineHttpsProtocol", (TlsGuardedHttpProtocol,), {"limiter": http.limiter, "guard": http.guard})

    def make(*args: Any, **kwargs: Any) -> asyncio.Protocol:
        return _TlsGate(secure(*args, **kwargs), http.limiter, context, http.guard.header_timeout_seconds)

    return make
