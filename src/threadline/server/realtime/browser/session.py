"""One browser notification session: the subscription, replay, live queue and acknowledgements.

The session is independent of its transport (WebSocket or xhr-polling): it
fills an outbox of socket.io packets and reads the client's packets. Which
events it carries and how it resumes (subscribe to the hub *first*, replay
from the store after the resume position, then go live, skipping what the
replay covered) is the real-time core's: :class:`..core.Stream`.

Delivery is acknowledged: every notification is a Trouter request the client
answers; the session's resume position is a resume token over the store's
event partitions (:mod:`..cursor`): in each partition, the last event whose
request, and all before it, were answered. A reconnect resumes from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

import msgspec

from threadline.identity.tokens import TokenClaims
from threadline.store.base import StoreError
from threadline.store.records import Event

from .. import cursor
from ..core import CLOSED, PENDING, REPLAY, Stream
from . import frames

if TYPE_CHECKING:
    from .manager import BrowserRealtime

__all__ = ["Session"]

log = logging.getLogger("threadline.server.browser_rt")

_decode = msgspec.json.Decoder().decode


class Session(Stream):
    """A socket.io session of one user, from the handshake to the close.

    Args:
        manager: the owner.
        sid: the socket.io session id (secret; it authenticates the WebSocket).
        claims: the verified token's claims.
        sr: the Trouter session id the client keeps across reconnects.
        start: the cursor to resume after; a string (an old integer position or another partitioning's
            token: resume impossible, ``trouter.message_loss``); or None for "from now".
        base: the public base URL (for ``url``/``surl``).
    """

    def __init__(
        self, manager: BrowserRealtime, sid: str, claims: TokenClaims, sr: str, start: cursor.Point | None,
        base: str,
    ) -> None:
        super().__init__(claims.user_id, PENDING)
        self.manager = manager
        self.sid = sid
        self.claims = claims
        self.sr = sr
        self.start = start
        self.base = base
        self.created = time.monotonic()
        self.last_seen = self.created
        self.outbox: deque[str] = deque()
        self.outbox_chars = 0
        self.wake = asyncio.Event()
        #: Set once the session has ended (the transport then flushes the last packet and closes).
        self.ended = asyncio.Event()
        #: Set when the outbox drains or the client answers: the replay waits on it under pressure.
        self.relief = asyncio.Event()
        self.next_request = 1
        #: Request id -> [position, answered] of notifications not yet answered in order, in send order.
        self.unacked: OrderedDict[int, list[int]] = OrderedDict()
        self.task: asyncio.Task[None] | None = None
        self.polling = False
        #: The resume token the client last got in ``trouter.connected``, when, and the pending refresh.
        self.announced: str | None = None
        self.announced_at = 0.0
        self.refresh: asyncio.TimerHandle | None = None

    @property
    def closed(self) -> bool:
        """Whether the session has ended (its last packets may still be in the outbox)."""
        return self.state == CLOSED

    @property
    def surl(self) -> str:
        """The session's service URL (registered at the registrar)."""
        return f"{self.base}/trouter/s/{self.sr}"

    # -- start ------------------------------------------------------------------------------------------

    def attach(self, *, polling: bool) -> None:
        """Start the stream once a transport is there: ``1::``, ``trouter.connected``, replay, live."""
        if self.state != PENDING:
            return
        self.polling = polling
        self.state = REPLAY
        self.push(frames.CONNECT)
        self.announced = self.resume_token
        self.push(frames.event("trouter.connected", self.manager.connected_args(self, self.announced)))
        self.announced_at = time.monotonic()
        self.subscribe(self.manager.hub)
        self.task = asyncio.create_task(self._replay())

    async def _replay(self) -> None:
        store = self.manager.store
        try:
            start = await self.resume(store, self.start)
            if start.lost and start.requested is not None:
                # An old integer position, another partitioning, or events pruned since: refetch.
                log.info("browser session %s resumes after %s, older than kept: message loss",
                         self.sr, start.requested[:40])
                self.push(frames.event("trouter.message_loss", {"droppedIndicators": [
                    {"tag": "chat", "etag": start.requested}]}))
            self._schedule_refresh()  # a start the client cannot resume from (or an old integer) is replaced
            await self.replay(store, self.manager.options.replay_page)
        except StoreError as exc:
            log.warning("browser session replay failed: %s", exc)
            self.close(frames.disconnect(), reason="store_error")

    async def replayed(self, event: Event) -> bool:
        """Send one replayed event once the queue has room; False once the session left the replay."""
        await self._room()
        if self.state != REPLAY:
            return False
        self._notify(event)
        return True

    async def _room(self) -> None:
        """Flow control of the replay: wait while half the queue or half the answer window is used."""
        options = self.manager.options
        while self.state == REPLAY and (
            len(self.outbox) * 2 >= options.queue_frames or self.outbox_chars * 2 >= options.queue_chars
            or len(self.unacked) * 2 >= options.queue_frames
        ):
            self.relief.clear()
            await self.relief.wait()

    # -- events -----------------------------------------------------------------------------------------

    def buffer_limit(self) -> int:
        """Live events kept while replaying: at most half the queue."""
        options = self.manager.options
        return min(options.buffer_events, options.queue_frames // 2)

    def deliver(self, event: Event) -> None:
        """Send one new live event (never blocks)."""
        if event.position == 0 and self.outbox_chars * 2 > self.manager.options.queue_chars:
            return  # typing indicators go first under pressure
        self._notify(event)

    def _notify(self, event: Event) -> None:
        body = self.manager.notification(event, self.user_id)  # shared by this user's sessions
        if body is None:
            return
        request_id = self.next_request
        self.next_request += 1
        if event.position:
            self.unacked[request_id] = [event.position, 0]
            if len(self.unacked) > self.manager.options.queue_frames:
                self.close(frames.disconnect(), reason="overflow")  # the client stopped answering
                return
        self.push(frames.message({
            "id": request_id, "method": "POST", "url": f"{self.surl}/chat",
            "headers": {"MS-CV": f"{self.sr[:8]}.{request_id}", "Content-Type": "application/json"},
            "body": body,
        }))

    # -- client packets ---------------------------------------------------------------------------------

    def handle(self, text: str) -> None:
        """Read one client packet: answer pings and activity, record notification replies."""
        self.last_seen = time.monotonic()
        packet = frames.decode(text)
        if packet is None or self.state == CLOSED:
            return
        if packet.type == "2":
            return  # heartbeat echo
        if packet.type == "0":
            self.close(None)
        elif packet.type == "5" and packet.id is not None:
            self.push(frames.ack(packet.id, {"status": 200}) if packet.wants_data else frames.ack(packet.id))
        elif packet.type == "3":
            self._reply(packet.data)

    def _reply(self, data: str) -> None:
        try:
            reply = _decode(data)
        except msgspec.DecodeError:
            return
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), int):
            return
        entry = self.unacked.get(reply["id"])
        if entry is None:
            return
        if reply.get("status") != 200:
            log.info("browser client answered notification %s with %s", reply["id"], reply.get("status"))
        entry[1] = 1
        while self.unacked:
            first_id, (_position, done) = next(iter(self.unacked.items()))
            if not done:
                break
            del self.unacked[first_id]
        self.relief.set()
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        """Soon tell the client its new resume position (at most every ``refresh_seconds``).

        The client caches the ``connectparams`` of the last ``trouter.connected`` and sends them on
        every reconnect, so after a crash (or on another node) it resumes from here instead of from its
        last connection. Not for xhr-polling: each ``trouter.connected`` lengthens its poll URL.
        """
        if self.polling or self.refresh is not None or self.state == CLOSED:
            return
        if self.resume_token == self.announced:
            return
        delay = max(0.0, self.announced_at + self.manager.options.refresh_seconds - time.monotonic())
        self.refresh = asyncio.get_running_loop().call_later(delay, self._refresh)

    def _refresh(self) -> None:
        self.refresh = None
        token = self.resume_token
        if self.state == CLOSED or token is None or token == self.announced:
            return
        self.push(frames.event("trouter.connected", self.manager.connected_args(self, token)))
        self.announced = token
        self.announced_at = time.monotonic()

    @property
    def resume_position(self) -> cursor.Point | None:
        """Where a reconnect should resume: in each partition, before its first unanswered notification.

        Before the replay has placed the session, what it was started with.
        """
        sent = self.last_sent
        if sent is None:
            return self.start
        after = list(sent.after)
        count = len(after)
        for position, _answered in self.unacked.values():
            part = position % count
            after[part] = min(after[part], position - count)
        return cursor.Cursor(after)

    @property
    def resume_token(self) -> str | None:
        """:attr:`resume_position` as the client carries it (``connectparams.pos``)."""
        return cursor.encode(self.resume_position)

    # -- outbox -----------------------------------------------------------------------------------------

    def push(self, packet: str) -> None:
        """Queue a packet for the transport; an overflowing queue ends the session."""
        if self.state == CLOSED:
            return
        options = self.manager.options
        if len(self.outbox) >= options.queue_frames or self.outbox_chars + len(packet) > options.queue_chars:
            self.close(frames.disconnect(), reason="overflow")
            return
        self.outbox.append(packet)
        self.outbox_chars += len(packet)
        self.wake.set()

    def take(self) -> list[str]:
        """Everything queued, in order (the queue is emptied)."""
        packets = list(self.outbox)
        self.outbox.clear()
        self.outbox_chars = 0
        self.wake.clear()
        self.relief.set()
        return packets

    def close(self, packet: str | None, reason: str = "client") -> None:
        """End the session: leave the hub, keep the resume position, queue a last packet (idempotent).

        Args:
            packet: a last packet for the client (``0::``...), or None.
            reason: why, for the ``threadline_browser_session_ends_total`` metric.
        """
        if self.state == CLOSED:
            return
        if packet is not None:
            self.outbox.append(packet)
        self.state = CLOSED
        self.leave()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.refresh is not None:
            self.refresh.cancel()
            self.refresh = None
        self.manager.ended(self, reason)
        self.wake.set()
        self.ended.set()
        self.relief.set()
