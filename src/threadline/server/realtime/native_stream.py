"""One ``/chat/realtime`` connection: a :class:`.core.Stream` with a bounded send queue and timers.

The hub's fan-out only appends a pre-encoded frame (the event's JSON is
encoded once per event, the per-user ``recipient`` suffix once per connection)
and wakes the connection's writer, so a slow client never delays the others;
one whose queue overflows is closed with :data:`.native_wire.CLOSE_TOO_SLOW`.
Under uvicorn a frame goes straight to the transport when nothing waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from threadline.identity.tokens import TokenClaims
from threadline.protocol.times import format_ms
from threadline.server import metrics
from threadline.server.services.payloads import identifier_kind
from threadline.server.wsclose import fit_close_reason
from threadline.store.base import StoreError
from threadline.store.records import Event

from . import cursor
from .core import CLOSED, LIVE, REPLAY, Stream
from .native_wire import (
    CLOSE_HEARTBEAT_TIMEOUT,
    CLOSE_TOO_SLOW,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    abort_transport,
    control,
    direct_protocol,
    json_encode,
    write_text_frame,
)

if TYPE_CHECKING:
    from .native import RealtimeManager

__all__ = ["Connection"]

log = logging.getLogger("threadline.server.realtime")


class Connection(Stream):
    """One open WebSocket: its queue, its timers, and its stream (:class:`.core.Stream`)."""

    __slots__ = (
        "claims", "close_request", "closed", "direct", "heartbeat_due", "id", "interval", "last_seen",
        "manager", "pump", "queue", "queued_bytes", "send_started", "sending", "tail", "timer",
        "websocket",
    )

    def __init__(
        self, manager: RealtimeManager, websocket: WebSocket, claims: TokenClaims, heartbeat: float
    ) -> None:
        super().__init__(claims.user_id)
        self.manager = manager
        self.websocket = websocket
        self.claims = claims
        self.id = uuid.uuid4().hex
        recipient = json_encode(identifier_kind(claims.user_id)).decode()
        #: What follows an event's data up to its resume token (the token differs per connection).
        self.tail = '"recipient":' + recipient + '},"position":"'
        self.direct = direct_protocol(websocket.scope)
        #: Frames waiting for the writer task; created on demand, since an idle connection has none.
        self.queue: deque[bytes] | None = None
        #: The UTF-8 bytes in the queue: frames wait encoded, so this is the memory they hold.
        self.queued_bytes = 0
        self.sending = False
        self.send_started = 0.0
        self.last_seen = time.monotonic()
        self.close_request: tuple[int, str] | None = None
        self.closed = False
        self.pump: asyncio.Task[None] | None = None
        #: One timer serves both the heartbeat and the token's expiry (each costs memory per connection).
        self.timer: asyncio.TimerHandle | None = None
        #: The heartbeat interval this client was given.
        self.interval = heartbeat
        self.heartbeat_due = 0.0

    # -- fan-out (called by the hub; never blocks) -------------------------------------------------

    def buffer_limit(self) -> int:
        """Live events kept while replaying (:attr:`RealtimeOptions.buffer_events`)."""
        return self.manager.options.buffer_events

    def deliver(self, event: Event) -> None:
        """Queue one new live event (or write it straight to the socket when nothing waits)."""
        if self._writable_now():
            head = self.manager.frame_head_bytes(event)
            write_text_frame(self.direct, head, self._tail().encode())
            return
        if event.position == 0 and self.queued_bytes * 2 > self.manager.options.queue_bytes:
            return  # typing indicators are the first to go under pressure
        self._queue(self.manager.frame_head_bytes(event) + self._tail().encode())

    def _tail(self) -> str:
        """The end of an event frame: the recipient, and the resume token after the event."""
        return self.tail + (cursor.encode(self.last_sent) or "") + '"}'

    @property
    def position(self) -> str | None:
        """The token to resume after what this connection sent (None before its replay began)."""
        return cursor.encode(self.last_sent)

    def _writable_now(self) -> bool:
        """Whether a frame may go straight to the socket: live, nothing queued or in flight, not paused."""
        direct = self.direct
        return (
            direct is not None and self.state == LIVE and not self.queue
            and (self.pump is None or self.pump.done())
            and direct.writable.is_set() and not direct.close_sent and not direct.transport.is_closing()
        )

    def _enqueue(self, frame: bytes) -> None:
        """Queue a UTF-8 frame for the writer task (started on demand)."""
        if self._writable_now():
            write_text_frame(self.direct, frame, b"")
            return
        self._queue(frame)

    def _queue(self, frame: bytes) -> None:
        """Queue a frame that cannot go straight to the socket (closes a connection queued too deep)."""
        options = self.manager.options
        waiting = len(self.queue) if self.queue is not None else 0
        if waiting >= options.queue_frames or self.queued_bytes + len(frame) > options.queue_bytes:
            self.close(CLOSE_TOO_SLOW, "The client reads too slowly; reconnect to resume.")
            return
        self._push(frame)
        if self.state == LIVE and (self.pump is None or self.pump.done()):
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
        was_replaying = self.state == REPLAY
        self.state = CLOSED
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
        self.leave()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def disconnected(self) -> None:
        """The client went away: stop everything without sending anything."""
        self.closed = True
        self.state = CLOSED
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
            if self.state == LIVE:
                if now - self.last_seen > 2.5 * self.interval:
                    self.close(CLOSE_HEARTBEAT_TIMEOUT, "No pong from the client.")
                    return
                self._enqueue(control("ping").encode())
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
            write_text_frame(direct, frame.encode() if isinstance(frame, str) else frame, b"")
        finally:
            self.sending = False

    async def run_pump(self, after: cursor.Point | None) -> None:
        """Replay, go live, and close when asked; the task is cancelled to interrupt a blocked send."""
        await self._guarded(self._replay_and_drain(after))

    async def _replay_and_drain(self, after: cursor.Point | None) -> None:
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

    async def _replay(self, after: cursor.Point | None) -> None:
        manager = self.manager
        start = await self.resume(manager.store, after)
        expires = format_ms(self.claims.expires_at * 1000)
        await self._send(control(
            "hello", connectionId=self.id, position=start.start.token(), latest=start.latest.token(),
            oldest=start.oldest.token(),
            heartbeatSeconds=self.interval, expiresOn=expires,
            user=identifier_kind(self.user_id),
        ))
        if start.gap:
            await self._send(control(
                "resumeGap", requested=start.requested, oldest=start.oldest.token(), position=start.start.token(),
            ))
        if not await self.replay(manager.store, manager.options.replay_page):
            return
        self.last_seen = time.monotonic()  # the heartbeat deadline counts from here
        self._enqueue(control("synced", position=self.position).encode())

    async def replayed(self, event: Event) -> bool:
        """Send one replayed event (awaits the socket: the replay goes at the client's pace)."""
        cursor.later(self.last_sent, event.position)  # the frame carries the token after the event
        await self._send(self.manager.frame_head(event) + self._tail())
        return True

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
            abort_transport(self.websocket.scope)
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass
        self._drop_queue()
