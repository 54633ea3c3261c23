"""Real-time chat events over a WebSocket: ``GET /chat/realtime``.

One connection streams to one user the events of every thread it is a member
of, shaped as the ACS JS SDK's events (``docs/realtime.md`` is the protocol).

How a connection never misses an event: it subscribes to the hub *first*,
buffering live events; then it replays the event log from the store after the
position the client asked for, page by page; then it appends the buffered
events whose position it has not sent yet and goes live. Positions are the
store's commit order, so an event with a position at or below the last
replayed one was part of the replay, whether it sat in the buffer or is
published only later (a write is published a moment after its commit, so the
replay can read an event before the hub delivers it): both are skipped. Live events that pile up beyond
:attr:`RealtimeOptions.buffer_events` during the replay are dropped and
fetched from the store in another round instead, so memory stays bounded.

Each connection has a bounded send queue. The hub's fan-out only appends a
pre-encoded frame (the event's JSON is encoded once per event, the per-user
``recipient`` suffix once per connection) and wakes the connection's writer,
so a slow client never delays the others; one whose queue overflows is
closed with :data:`CLOSE_TOO_SLOW`.

Tokens are checked at connect, at their expiry time, and for revocation or
deletion of the identity every :attr:`RealtimeOptions.revalidate_seconds` with
one store read for all connected users.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from threadline.identity.tokens import InvalidToken, TokenClaims, TokenIssuer
from threadline.protocol.errors import ChatServiceError
from threadline.protocol.inputs import INT64_MAX
from threadline.protocol.times import format_ms
from threadline.protocol.versions import CHAT_VERSIONS
from threadline.server import metrics
from threadline.server.connlimits import UserConnectionCap
from threadline.server.events import Hub
from threadline.server.services.identity import IdentityService
from threadline.server.services.payloads import identifier_kind
from threadline.server.wsclose import fit_close_reason
from threadline.store.base import Store, StoreError
from threadline.store.records import Event

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
    "RawSendCapture",
    "RealtimeManager",
    "RealtimeOptions",
    "realtime_endpoint",
]

log = logging.getLogger("threadline.server.realtime")

#: Where the endpoint is mounted.
PATH = "/chat/realtime"

#: The client closed, or the server stopped the stream on purpose.
CLOSE_NORMAL = 1000
#: An unexpected server error.
CLOSE_INTERNAL = 1011
#: The server is restarting; a ``reconnect`` frame came first.
CLOSE_SERVICE_RESTART = 1012
#: The database did not answer; reconnect later.
CLOSE_TRY_AGAIN = 1013
#: A bad query parameter (``after``, ``heartbeat``, ``api-version``).
CLOSE_BAD_REQUEST = 4000
#: No token, a malformed or foreign token, or a token that has expired.
CLOSE_UNAUTHORIZED = 4001
#: The client answered no ``ping`` for too long.
CLOSE_HEARTBEAT_TIMEOUT = 4002
#: The token was revoked, the identity was deleted, or the token has no chat scope.
CLOSE_REVOKED = 4003
#: The client read too slowly: its send queue overflowed. Reconnect to resume.
CLOSE_TOO_SLOW = 4008
#: The user holds :attr:`RealtimeOptions.connections_per_user` connections already.
CLOSE_TOO_MANY = 4029

_REPLAY, _LIVE, _CLOSING = 0, 1, 2
_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode
_PONG = b'{"type":"pong"}'


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


class RawSendCapture:
    """ASGI middleware keeping the server's own ``send`` in WebSocket scopes.

    Starlette wraps ``send``; the server's original (a bound method of the
    uvicorn protocol) lets a stalled connection's transport be aborted, which
    ASGI itself cannot do. Everything else passes through untouched.

    Args:
        app: the wrapped application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record ``send`` for WebSocket scopes and call the app.

        ``/chat/realtime`` itself is served from here: skipping the router and
        exception layers saves their coroutine frames on every idle connection.
        """
        if scope["type"] == "websocket":
            scope["threadline.raw_send"] = send
            if scope["path"] == PATH:
                manager: RealtimeManager = scope["app"].state.realtime
                await manager.serve(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)


def _abort_transport(scope: Scope) -> bool:
    """Abort the connection's transport when the server exposes it; True if it did."""
    owner = getattr(scope.get("threadline.raw_send"), "__self__", None)
    transport = getattr(owner, "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
        return True
    return False


def _direct_protocol(scope: Scope) -> Any:
    """The server's protocol object when it can take frames directly, else None.

    Under uvicorn's WebSocket protocol (the one ``threadline serve`` runs), a
    frame can be written to the transport without a task switch per
    connection; the fan-out then costs one ``write`` per connection. Any
    other server goes through ASGI ``send``.
    """
    owner = getattr(scope.get("threadline.raw_send"), "__self__", None)
    needed = ("transport", "writable", "close_sent")
    if owner is None or not all(hasattr(owner, name) for name in needed):
        return None
    if not isinstance(owner.writable, asyncio.Event) or not hasattr(owner.transport, "write"):
        return None
    return owner


def _forget_handshake(protocol: Any) -> None:
    """Drop the handshake request and response a server protocol keeps after the handshake.

    uvicorn's WebSocket protocol holds both for the connection's lifetime but
    reads them only while accepting; on an idle connection they are the
    largest single cost (about 4 KiB of parsed headers). Only done once the
    handshake is complete, and only to attributes that exist.
    """
    if protocol is None or getattr(protocol, "handshake_complete", False) is not True:
        return
    for name in ("request", "response"):
        if getattr(protocol, name, None) is not None:
            setattr(protocol, name, None)


def _write_text_frame(protocol: Any, head: bytes, tail: bytes) -> None:
    """Write one unfragmented, unmasked text frame holding ``head + tail`` (RFC 6455 §5.2).

    A server may send any message uncompressed, even with permessage-deflate
    negotiated (RFC 7692 §6), so the frame needs no per-connection encoding.
    """
    size = len(head) + len(tail)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    protocol.transport.writelines((header, head, tail))


def _control(kind: str, **fields: Any) -> str:
    return _json_encode({"type": kind, **fields}).decode()


class _Connection:
    """One open WebSocket: its queue, its state and its timers."""

    __slots__ = (
        "claims", "close_request", "closed", "direct", "heartbeat_due", "id", "interval", "last_seen",
        "last_sent", "manager", "pump", "queue", "queued_bytes", "replay_buffer", "replayed_through",
        "send_started", "sending", "state", "tail", "tail_bytes", "timer", "unsubscribe", "user_id", "websocket",
    )

    def __init__(
        self, manager: RealtimeManager, websocket: WebSocket, claims: TokenClaims, heartbeat: float
    ) -> None:
        self.manager = manager
        self.websocket = websocket
        self.claims = claims
        self.user_id = claims.user_id
        self.id = uuid.uuid4().hex
        recipient = _json_encode(identifier_kind(claims.user_id)).decode()
        self.tail = '"recipient":' + recipient + "}}"
        self.tail_bytes = self.tail.encode()
        self.direct = _direct_protocol(websocket.scope)
        self.state = _REPLAY
        self.replay_buffer: list[Event] | None = []
        #: Frames waiting for the writer task; created on demand, since an idle connection has none.
        self.queue: deque[bytes] | None = None
        #: The UTF-8 bytes in the queue: frames wait encoded, so this is the memory they hold.
        self.queued_bytes = 0
        self.sending = False
        self.send_started = 0.0
        self.last_sent = 0
        self.replayed_through = 0
        self.last_seen = time.monotonic()
        self.close_request: tuple[int, str] | None = None
        self.closed = False
        self.pump: asyncio.Task[None] | None = None
        self.unsubscribe: Callable[[], None] | None = None
        #: One timer serves both the heartbeat and the token's expiry (each costs memory per connection).
        self.timer: asyncio.TimerHandle | None = None
        #: The heartbeat interval this client was given.
        self.interval = heartbeat
        self.heartbeat_due = 0.0

    # -- fan-out (called by the hub; never blocks) -------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Take one event from the hub: queue it live, or buffer it while replaying."""
        state = self.state
        if state == _LIVE:
            self._enqueue_event(event)
        elif state == _REPLAY:
            buffer = self.replay_buffer
            if buffer is not None:
                if len(buffer) >= self.manager.options.buffer_events:
                    self.replay_buffer = None  # too many: the next replay round reads them from the store
                else:
                    buffer.append(event)

    def _enqueue_event(self, event: Event) -> None:
        if 0 < event.position <= self.replayed_through:
            return  # read from the store already; its publication just came later than the read
        if event.position > self.last_sent:
            self.last_sent = event.position
        if self._writable_now():
            head = self.manager.frame_head_bytes(event)
            _write_text_frame(self.direct, head, self.tail_bytes)
            return
        if event.position == 0 and self.queued_bytes * 2 > self.manager.options.queue_bytes:
            return  # typing indicators are the first to go under pressure
        self._enqueue(self.manager.frame_head_bytes(event) + self.tail_bytes)

    def _writable_now(self) -> bool:
        """Whether a frame may go straight to the socket: live, nothing queued or in flight, not paused."""
        direct = self.direct
        return (
            direct is not None and self.state == _LIVE and not self.queue
            and (self.pump is None or self.pump.done())
            and direct.writable.is_set() and not direct.close_sent and not direct.transport.is_closing()
        )

    def _enqueue(self, frame: bytes) -> None:
        """Queue a UTF-8 frame for the writer task (started on demand)."""
        if self._writable_now():
            _write_text_frame(self.direct, frame, b"")
            return
        options = self.manager.options
        waiting = len(self.queue) if self.queue is not None else 0
        if waiting >= options.queue_frames or self.queued_bytes + len(frame) > options.queue_bytes:
            self.close(CLOSE_TOO_SLOW, "The client reads too slowly; reconnect to resume.")
            return
        self._push(frame)
        if self.state == _LIVE and (self.pump is None or self.pump.done()):
            self.pump = asyncio.create_task(self._write_queue())

    # -- closing ------------------------------------------------------------------------------------

    def close(self, code: int, reason: str, *, frame: str | None = None, urgent: bool = True) -> None:
        """Ask the writer to close the stream.

        Args:
            code: the WebSocket close code.
            reason: the close reason.
            frame: a last frame to send before closing (``reconnect``).
            urgent: drop what is queued (the frame still goes) and interrupt a blocked send.
        """
        if self.close_request is not None or self.closed:
            return
        metrics.server_closed(code)
        was_replaying = self.state == _REPLAY
        self.state = _CLOSING
        self.replay_buffer = None
        self._release()
        if urgent:
            self._drop_queue()
        if frame is not None:
            self._push(frame.encode())
        self.close_request = (code, fit_close_reason(reason))
        pump = self.pump
        if pump is None or pump.done():
            self.pump = asyncio.create_task(self._write_queue())  # nothing running: one task to close
        elif was_replaying or (urgent and self.sending):
            pump.cancel()

    def _push(self, frame: bytes) -> None:
        if self.queue is None:
            self.queue = deque()
        self.queue.append(frame)
        self.queued_bytes += len(frame)

    def _drop_queue(self) -> None:
        self.queue = None
        self.queued_bytes = 0

    def _release(self) -> None:
        """Leave the hub and stop the timer (idempotent)."""
        if self.unsubscribe is not None:
            self.unsubscribe()
            self.unsubscribe = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def disconnected(self) -> None:
        """The client went away: stop everything without sending anything."""
        self.closed = True
        self.state = _CLOSING
        self.replay_buffer = None
        self._drop_queue()
        self._release()
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()

    # -- timers -------------------------------------------------------------------------------------

    def start_timers(self) -> None:
        """Schedule the first heartbeat (or the token's expiry, if that comes first)."""
        self.heartbeat_due = time.monotonic() + self.interval
        self._schedule()

    def _schedule(self) -> None:
        """Arm the one timer for whichever comes first: the next heartbeat or the token's expiry."""
        until_expiry = self.claims.expires_at - time.time()
        delay = max(0.0, min(self.heartbeat_due - time.monotonic(), until_expiry))
        self.timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        """Close an expired stream; every interval, give up on a client that neither reads nor answers."""
        self.timer = None
        if self.close_request is not None or self.closed:
            return
        if self.claims.expires_at <= time.time():
            self.close(CLOSE_UNAUTHORIZED, "The access token has expired.")
            return
        now = time.monotonic()
        if now >= self.heartbeat_due:
            self.heartbeat_due = now + self.interval
            if self.sending and now - self.send_started > 2.5 * self.interval:
                self.close(CLOSE_TOO_SLOW, "The client stopped reading; reconnect to resume.")
                return
            if self.state == _LIVE:
                if now - self.last_seen > 2.5 * self.interval:
                    self.close(CLOSE_HEARTBEAT_TIMEOUT, "No pong from the client.")
                    return
                self._enqueue(_control("ping").encode())
        self._schedule()

    # -- the writer ---------------------------------------------------------------------------------

    async def _send(self, frame: str | bytes) -> None:
        self.sending = True
        self.send_started = time.monotonic()
        try:
            direct = self.direct
            if direct is None:
                await self.websocket.send_text(frame if isinstance(frame, str) else frame.decode())
                return
            await direct.writable.wait()
            if direct.close_sent or direct.transport.is_closing():
                raise WebSocketDisconnect(1006)
            _write_text_frame(direct, frame.encode() if isinstance(frame, str) else frame, b"")
        finally:
            self.sending = False

    async def run_pump(self, after: int | None) -> None:
        """Replay, go live, and close when asked; the task is cancelled to interrupt a blocked send."""
        await self._guarded(self._replay_and_drain(after))

    async def _replay_and_drain(self, after: int | None) -> None:
        await self._replay(after)
        await self._drain()  # what arrived during the replay, and ``synced``

    async def _write_queue(self) -> None:
        """Send what is queued, then end (the next slow frame starts another); close if asked."""
        await self._guarded(self._drain())

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run replay or drain work; on a close request or an error, finish the connection."""
        try:
            await work
        except asyncio.CancelledError:
            if self.close_request is None or self.closed:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except (WebSocketDisconnect, OSError, RuntimeError):
            self.disconnected()
            return
        except StoreError as exc:
            log.warning("real-time replay failed: %s", exc)
            self.close(CLOSE_TRY_AGAIN, "The database did not answer; reconnect later.")
        if self.close_request is not None and not self.closed:
            await self._finish()

    async def _replay(self, after: int | None) -> None:
        manager = self.manager
        store = manager.store
        low, high = await store.event_bounds()
        gap = after is not None and not low <= after <= high
        if after is None:
            start = high
        elif gap:
            start = low if after < low else high
        else:
            start = after
        self.last_sent = start
        expires = format_ms(self.claims.expires_at * 1000)
        await self._send(_control(
            "hello", connectionId=self.id, position=start, latest=high, oldest=low + 1,
            heartbeatSeconds=self.interval, expiresOn=expires,
            user=identifier_kind(self.user_id),
        ))
        if gap:
            await self._send(_control("resumeGap", requested=after, oldest=low + 1, position=start))
        page = manager.options.replay_page
        while True:
            rows = await store.events_since(self.user_id, self.last_sent, page)
            for event in rows:
                await self._send(manager.frame_head(event) + self.tail)
                self.last_sent = event.position
            if len(rows) < page:
                if self.replay_buffer is None and self.state == _REPLAY:
                    self.replay_buffer = []  # it overflowed during this round: read the store again
                    continue
                break
        buffered = self.replay_buffer or []
        self.replay_buffer = None
        if self.state != _REPLAY:
            return
        self.state = _LIVE
        self.last_seen = time.monotonic()  # the heartbeat deadline counts from here
        self.replayed_through = self.last_sent
        for event in buffered:
            self._enqueue_event(event)
        self._enqueue(_control("synced", position=self.last_sent).encode())

    async def _drain(self) -> None:
        while self.queue and self.close_request is None:
            frame = self.queue.popleft()
            self.queued_bytes -= len(frame)
            await self._send(frame)
        if not self.queue and self.close_request is None:
            self._drop_queue()  # an idle connection keeps no queue

    async def _finish(self) -> None:
        """Send what the close left queued (a ``reconnect``), then the close frame."""
        assert self.close_request is not None
        code, reason = self.close_request
        grace = self.manager.options.close_grace_seconds

        async def flush_and_close() -> None:
            while self.queue:
                frame = self.queue.popleft()
                await self.websocket.send_text(frame.decode())
            if self.websocket.application_state != WebSocketState.DISCONNECTED:
                await self.websocket.close(code, reason)

        try:
            await asyncio.wait_for(flush_and_close(), grace)
        except TimeoutError:
            log.info("real-time connection %s did not take its close (%d) in time; aborting", self.id, code)
            _abort_transport(self.websocket.scope)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass
        self._drop_queue()


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
        self.connections: set[_Connection] = set()
        self.user_cap = UserConnectionCap(self.options.connections_per_user)
        metrics.realtime_queued_bytes(self.queued_bytes)
        self.closing = False
        self._checker: asyncio.Task[None] | None = None
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
        head = f'{{"type":"{event.type}","position":{event.position},"data":{payload[:-1]}{separator}'
        self._cached_event, self._cached_head = event, head
        return head

    def frame_head_bytes(self, event: Event) -> bytes:
        """:meth:`frame_head` as UTF-8, also built once per event."""
        if event is self._cached_bytes_event:
            return self._cached_head_bytes
        payload = event.payload
        separator = b"," if len(payload) > 2 else b""
        head = b'{"type":"%s","position":%d,"data":%s%s' % (
            event.type.encode(), event.position, payload[:-1], separator,
        )
        self._cached_bytes_event, self._cached_head_bytes = event, head
        return head

    # -- checks -------------------------------------------------------------------------------------

    def _ensure_checker(self) -> None:
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._revalidate_forever())

    async def _revalidate_forever(self) -> None:
        while self.connections:
            await asyncio.sleep(self.options.revalidate_seconds)
            try:
                await self.revalidate()
            except StoreError as exc:  # pragma: no cover - retried next round
                log.warning("real-time token check failed: %s", exc)

    async def revalidate(self) -> None:
        """Close connections whose token was revoked or expired, or whose identity was deleted."""
        connections = list(self.connections)
        if not connections:
            return
        users = await self.store.get_users(sorted({c.user_id for c in connections}))
        now = time.time()
        for connection in connections:
            user = users.get(connection.user_id)
            if user is None or user.deleted_ms is not None:
                connection.close(CLOSE_REVOKED, "The identity was deleted.")
            elif user.token_generation != connection.claims.generation:
                connection.close(CLOSE_REVOKED, "The access token was revoked.")
            elif connection.claims.expires_at <= now:
                connection.close(CLOSE_UNAUTHORIZED, "The access token has expired.")

    # -- shutdown -----------------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """Tell every client to reconnect (``reconnect`` frame, close 1012) and wait a little for them."""
        self.closing = True
        for connection in list(self.connections):
            connection.close(
                CLOSE_SERVICE_RESTART, "The server is restarting.", urgent=False,
                frame=_reconnect_frame(connection.last_sent),
            )
        pending = {t for t in self._handlers if not t.done()}
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.options.shutdown_seconds)
            for connection in list(self.connections):
                _abort_transport(connection.websocket.scope)
            if still:
                await asyncio.wait(still, timeout=1.0)
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker

    # -- one connection -----------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run one connection from the handshake to the close.

        Args:
            websocket: the accepted-to-be WebSocket.
        """
        await websocket.accept()
        _forget_handshake(_direct_protocol(websocket.scope))
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
            await websocket.send_text(_reconnect_frame(0))
            await _close(websocket, CLOSE_SERVICE_RESTART, "The server is restarting.")
            return
        query = _query(websocket)
        try:
            after, heartbeat = self._parameters(query)
        except ValueError as exc:
            await _close(websocket, CLOSE_BAD_REQUEST, str(exc))
            return
        token = _token_of(websocket, query)
        if not token:
            await _close(websocket, CLOSE_UNAUTHORIZED, "No access token.")
            return
        try:
            claims = self.issuer.verify(token)
        except InvalidToken:
            await _close(websocket, CLOSE_UNAUTHORIZED, "The access token is not valid or has expired.")
            return
        try:
            actor = await self.identity.authenticate(token)
        except ChatServiceError:
            await _close(websocket, CLOSE_REVOKED, "The access token was revoked or its identity deleted.")
            return
        except StoreError:
            await _close(websocket, CLOSE_TRY_AGAIN, "The database did not answer; reconnect later.")
            return
        if not actor.can_chat:
            await _close(websocket, CLOSE_REVOKED, "The access token has no chat scope.")
            return

        if not self.user_cap.acquire(claims.user_id):
            metrics.server_closed(CLOSE_TOO_MANY)
            await _close(websocket, CLOSE_TOO_MANY, f"This user holds {self.user_cap.per_user} real-time "
                         "connections already; close one first.")
            return
        connection = _Connection(self, websocket, claims, heartbeat)
        self.connections.add(connection)
        metrics.connections_opened()
        self._ensure_checker()
        connection.unsubscribe = self.hub.subscribe(connection.user_id, connection.on_event)
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

    def _parameters(self, query: dict[str, str]) -> tuple[int | None, float]:
        version = query.get("api-version")
        if version and version not in CHAT_VERSIONS:
            raise ValueError(f"api-version {version} is not supported.")
        raw_after = query.get("after")
        after = None
        if raw_after not in (None, ""):
            assert raw_after is not None
            significant = raw_after.lstrip("0")[:20] or "0"  # a position is a 64-bit integer on both engines
            if not (raw_after.isascii() and raw_after.isdigit() and int(significant) <= INT64_MAX):
                raise ValueError("after must be a non-negative integer.")
            after = int(raw_after)
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

    async def _read(self, connection: _Connection) -> None:
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
                frame = _json_decode(text)
            except msgspec.DecodeError:
                continue
            if isinstance(frame, dict) and frame.get("type") == "ping" and connection.state == _LIVE:
                connection._enqueue(_PONG)


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    """Close before going live, with a reason cut to fit the close frame."""
    await websocket.close(code, fit_close_reason(reason))


def _reconnect_frame(position: int) -> str:
    return _control("reconnect", reason="shutdown", position=position, retryAfterMs=random.randint(250, 2000))


def _query(websocket: WebSocket) -> dict[str, str]:
    """The query parameters (the last of repeated ones), read from the scope.

    Not ``websocket.query_params``: Starlette keeps that object on the
    connection for its lifetime, which every idle connection would pay for.
    """
    return dict(parse_qsl(websocket.scope["query_string"].decode("latin-1"), keep_blank_values=True))


def _token_of(websocket: WebSocket, query: dict[str, str]) -> str | None:
    header = ""
    for name, value in websocket.scope["headers"]:  # not websocket.headers: see _query
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return query.get("access_token") or None


async def realtime_endpoint(websocket: WebSocket) -> None:
    """The ``/chat/realtime`` route: hands the connection to the app's :class:`RealtimeManager`."""
    manager: RealtimeManager = websocket.app.state.realtime
    await manager.serve(websocket)
