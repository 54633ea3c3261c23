"""The native real-time protocol: chat events over a WebSocket at ``GET /chat/realtime``.

One connection streams to one user the events of every thread it is a member
of, shaped as the ACS JS SDK's events (``docs/realtime.md`` is the protocol).
Which events, and how none is missed across a reconnect (subscribe first,
replay from the client's ``after``, then live), is the core's
(:mod:`.core`, :mod:`.cursor`); this module speaks the wire: the query
parameters, ``hello``/``resumeGap``/``synced``/``ping``/``reconnect`` frames
and close codes (:mod:`.native_wire`), and one :class:`.native_stream.Connection`
per socket with its bounded send queue.

Tokens are checked at connect, at their expiry time, and for revocation or
deletion of the identity every :attr:`RealtimeOptions.revalidate_seconds` with
one store read for all connected users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.websockets import WebSocket

from threadline.identity.tokens import InvalidToken, TokenIssuer
from threadline.protocol.errors import ChatServiceError
from threadline.protocol.versions import CHAT_VERSIONS
from threadline.server import metrics
from threadline.server.events import Hub
from threadline.server.services.identity import IdentityService
from threadline.store.base import Store, StoreError
from threadline.store.records import Event

from . import cursor
from .core import DELETED, EXPIRED, LIVE, Checker, UserConnectionCap, token_verdicts
from .native_stream import Connection
from .native_wire import (
    CLOSE_BAD_REQUEST,
    CLOSE_HEARTBEAT_TIMEOUT,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_REVOKED,
    CLOSE_SERVICE_RESTART,
    CLOSE_TOO_MANY,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    PONG,
    abort_transport,
    close_early,
    direct_protocol,
    forget_handshake,
    json_decode,
    query_of,
    reconnect_frame,
    token_of,
)

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_HEARTBEAT_TIMEOUT",
    "CLOSE_INTERNAL",
    "CLOSE_NORMAL",
    "CLOSE_REVOKED",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TOO_MANY",
    "CLOSE_TOO_SLOW",
    "CLOSE_TRY_AGAIN",
    "CLOSE_UNAUTHORIZED",
    "PATH",
    "RealtimeManager",
    "RealtimeOptions",
    "realtime_endpoint",
]

log = logging.getLogger("threadline.server.realtime")

#: Where the endpoint is mounted.
PATH = "/chat/realtime"


@dataclass(frozen=True, slots=True)
class RealtimeOptions:
    """Tuning of the real-time endpoint.

    Attributes:
        heartbeat_seconds: how often the server sends ``ping`` by default.
        min_heartbeat_seconds: the smallest interval a client may ask for.
        max_heartbeat_seconds: the largest interval a client may ask for.
        revalidate_seconds: how often tokens are checked for revocation.
        queue_frames: frames a connection may have waiting before it is too slow.
        queue_bytes: UTF-8 bytes a connection may have waiting before it is too slow.
        replay_page: events read from the store per replay query.
        buffer_events: live events kept while replaying before falling back to the store.
        close_grace_seconds: how long a closing frame may wait for a stalled client
            before the connection is aborted.
        shutdown_seconds: how long shutdown waits for connections to take their ``reconnect``.
        connections_per_user: real-time connections one user may hold in this process.
    """

    heartbeat_seconds: float = 15.0
    min_heartbeat_seconds: float = 1.0
    max_heartbeat_seconds: float = 300.0
    revalidate_seconds: float = 2.0
    queue_frames: int = 2048
    queue_bytes: int = 2 * 1024 * 1024
    replay_page: int = 500
    buffer_events: int = 4096
    close_grace_seconds: float = 5.0
    shutdown_seconds: float = 3.0
    connections_per_user: int = 20


class RealtimeManager:
    """Every open real-time connection of this process, and what they share.

    Args:
        store: the opened store.
        hub: the started hub.
        identity: verifies tokens against revocation and deletion.
        issuer: reads token claims (expiry, generation).
        options: tuning.
    """

    def __init__(
        self, store: Store, hub: Hub, identity: IdentityService, issuer: TokenIssuer,
        options: RealtimeOptions | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.identity = identity
        self.issuer = issuer
        self.options = options or RealtimeOptions()
        self.connections: set[Connection] = set()
        self.user_cap = UserConnectionCap(self.options.connections_per_user)
        metrics.realtime_queued_bytes(self.queued_bytes)
        self.closing = False
        self._checker = Checker(self.revalidate, lambda: bool(self.connections), self.options.revalidate_seconds,
                                "real-time")
        self._handlers: set[asyncio.Task[Any]] = set()
        self._cached_event: Event | None = None
        self._cached_head = ""
        self._cached_bytes_event: Event | None = None
        self._cached_head_bytes = b""

    def queued_bytes(self) -> float:
        """The UTF-8 bytes waiting in every connection's send queue."""
        return float(sum(connection.queued_bytes for connection in self.connections))

    @property
    def connection_count(self) -> int:
        """How many connections are open."""
        return len(self.connections)

    def frame_head(self, event: Event) -> str:
        """The frame of an event up to its ``recipient``; built once per event.

        The hub hands one event to every subscriber in turn, so a one-entry
        cache serves the whole fan-out of an event.
        """
        if event is self._cached_event:
            return self._cached_head
        payload = event.payload.decode()
        separator = "," if len(payload) > 2 else ""
        head = f'{{"type":"{event.type}","data":{payload[:-1]}{separator}'
        self._cached_event, self._cached_head = event, head
        return head

    def frame_head_bytes(self, event: Event) -> bytes:
        """:meth:`frame_head` as UTF-8, also built once per event."""
        if event is self._cached_bytes_event:
            return self._cached_head_bytes
        payload = event.payload
        separator = b"," if len(payload) > 2 else b""
        head = b'{"type":"%s","data":%s%s' % (event.type.encode(), payload[:-1], separator)
        self._cached_bytes_event, self._cached_head_bytes = event, head
        return head

    # -- checks -------------------------------------------------------------------------------------

    async def revalidate(self) -> None:
        """Close connections whose token was revoked or expired, or whose identity was deleted."""
        connections = list(self.connections)
        verdicts = await token_verdicts(self.store, [(c.user_id, c.claims) for c in connections])
        for connection, verdict in zip(connections, verdicts, strict=True):
            if verdict == DELETED:
                connection.close(CLOSE_REVOKED, "The identity was deleted.")
            elif verdict == EXPIRED:
                connection.close(CLOSE_UNAUTHORIZED, "The access token has expired.")
            elif verdict is not None:
                connection.close(CLOSE_REVOKED, "The access token was revoked.")

    # -- shutdown -----------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Tell every client to reconnect (``reconnect`` frame, close 1012) and wait a little for them."""
        self.closing = True
        for connection in list(self.connections):
            connection.close(
                CLOSE_SERVICE_RESTART, "The server is restarting.", urgent=False,
                frame=reconnect_frame(connection.position),
            )
        pending = {t for t in self._handlers if not t.done()}
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.options.shutdown_seconds)
            for connection in list(self.connections):
                abort_transport(connection.websocket.scope)
            if still:
                await asyncio.wait(still, timeout=1.0)
        await self._checker.stop()

    # -- one connection -----------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run one connection from the handshake to the close.

        Args:
            websocket: the accepted-to-be WebSocket.
        """
        await websocket.accept()
        forget_handshake(direct_protocol(websocket.scope))
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(websocket)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _serve(self, websocket: WebSocket) -> None:
        if self.closing:
            await websocket.send_text(reconnect_frame(None))
            await close_early(websocket, CLOSE_SERVICE_RESTART, "The server is restarting.")
            return
        query = query_of(websocket)
        try:
            after, heartbeat = self._parameters(query)
        except ValueError as exc:
            await close_early(websocket, CLOSE_BAD_REQUEST, str(exc))
            return
        token = token_of(websocket, query)
        if not token:
            await close_early(websocket, CLOSE_UNAUTHORIZED, "No access token.")
            return
        try:
            claims = self.issuer.verify(token)
        except InvalidToken:
            await close_early(websocket, CLOSE_UNAUTHORIZED, "The access token is not valid or has expired.")
            return
        try:
            actor = await self.identity.authenticate(token)
        except ChatServiceError:
            await close_early(websocket, CLOSE_REVOKED, "The access token was revoked or its identity deleted.")
            return
        except StoreError:
            await close_early(websocket, CLOSE_TRY_AGAIN, "The database did not answer; reconnect later.")
            return
        if not actor.can_chat:
            await close_early(websocket, CLOSE_REVOKED, "The access token has no chat scope.")
            return

        if not self.user_cap.acquire(claims.user_id):
            metrics.server_closed(CLOSE_TOO_MANY)
            await close_early(websocket, CLOSE_TOO_MANY, f"This user holds {self.user_cap.per_user} real-time "
                         "connections already; close one first.")
            return
        connection = Connection(self, websocket, claims, heartbeat)
        self.connections.add(connection)
        metrics.connections_opened()
        self._checker.ensure()
        connection.subscribe(self.hub)  # first: live events wait in the buffer during the replay
        connection.start_timers()
        connection.pump = asyncio.create_task(connection.run_pump(after))
        try:
            await self._read(connection)
        finally:
            connection.disconnected()
            pump = connection.pump
            if not pump.done():
                pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            self.connections.discard(connection)
            self.user_cap.release(connection.user_id)
            metrics.connections_closed()

    def _parameters(self, query: dict[str, str]) -> tuple[cursor.Point | None, float]:
        version = query.get("api-version")
        if version and version not in CHAT_VERSIONS:
            raise ValueError(f"api-version {version} is not supported.")
        raw_after = query.get("after")
        after: cursor.Point | None = None
        if raw_after:
            # ValueError: neither a resume token nor an old integer position (that one gets resumeGap)
            after = cursor.parse(raw_after)
        heartbeat = self.options.heartbeat_seconds
        raw_heartbeat = query.get("heartbeat")
        if raw_heartbeat not in (None, ""):
            try:
                heartbeat = float(raw_heartbeat or "")
            except ValueError:
                raise ValueError("heartbeat must be a number of seconds.") from None
            low, high = self.options.min_heartbeat_seconds, self.options.max_heartbeat_seconds
            if not low <= heartbeat <= high:
                raise ValueError(f"heartbeat must be between {low:g} and {high:g} seconds.")
        return after, heartbeat

    async def _read(self, connection: Connection) -> None:
        """Read client frames until the connection ends: answer ``ping``, note every sign of life."""
        websocket = connection.websocket
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            connection.last_seen = time.monotonic()
            text = message.get("text")
            if not text:
                continue
            try:
                frame = json_decode(text)
            except msgspec.DecodeError:
                continue
            if isinstance(frame, dict) and frame.get("type") == "ping" and connection.state == LIVE:
                connection._enqueue(PONG)



async def realtime_endpoint(websocket: WebSocket) -> None:
    """The ``/chat/realtime`` route: hands the connection to the app's :class:`RealtimeManager`."""
    manager: RealtimeManager = websocket.app.state.realtime
    await manager.serve(websocket)
