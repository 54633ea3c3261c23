"""The real-time core: who receives which event, and how a stream never misses one.

Both wire protocols (:mod:`.native` for ``/chat/realtime``, :mod:`.browser`
for the ACS browser SDK's Trouter channel) build their streams on
:class:`Stream` and their managers on :class:`Checker` and
:func:`token_verdicts`; this module knows neither protocol.

Who receives what: the hub hands a stream only the events of its user, and
the store decides per event who may see it (membership and share-history are
applied when the event is written and when the log is read by
``Store.events_since``), so live events and replays obey the same rules.

Subscribe first, replay, then live: a stream subscribes to the hub *first*,
buffering live events; then it replays the event log from the store after its
resume cursor (:mod:`.cursor`: the last position delivered in each of the
store's event partitions), page by page; then it goes live, delivering the
buffered events the replay did not cover. An event at or below the replay's
cursor for its partition was part of the replay, whether it sat in the buffer or is
published only later (a write is published a moment after its commit, so the
replay can read an event before the hub delivers it): both are skipped. Live
events that pile up beyond the buffer limit during the replay are dropped and
read from the store in another round instead, so memory stays bounded.

Ending streams: :class:`Checker` revalidates every open stream's token
periodically with one store read (:func:`token_verdicts`: identity deleted,
token revoked, token expired); each protocol closes its streams its own way.
Per-user caps use :class:`~threadline.server.connlimits.UserConnectionCap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from threadline.identity.tokens import TokenClaims
from threadline.server.connlimits import UserConnectionCap
from threadline.server.events import Hub
from threadline.store.base import Store, StoreError
from threadline.store.records import Event

from . import cursor

__all__ = [
    "CLOSED", "DELETED", "EXPIRED", "LIVE", "PENDING", "REPLAY", "REVOKED",
    "Checker", "Stream", "UserConnectionCap", "token_verdicts",
]

log = logging.getLogger("threadline.server.realtime")

#: Stream states: waiting for a transport, replaying, live, closing or closed.
PENDING, REPLAY, LIVE, CLOSED = 0, 1, 2, 3

#: Why a stream's token no longer holds (see :func:`token_verdicts`).
DELETED, REVOKED, EXPIRED = "deleted", "revoked", "expired"


class Stream:
    """One user's event stream: subscribe first, replay, then live, without gaps or duplicates.

    A protocol subclasses it and provides :meth:`buffer_limit`, :meth:`replayed`
    (send one replayed event) and :meth:`deliver` (take one new live event).

    Args:
        user_id: the user whose events the stream carries.
        state: the initial state (:data:`REPLAY`, or :data:`PENDING` until a transport is there).
    """

    __slots__ = ("buffer", "last_sent", "replayed_through", "state", "unsubscribe", "user_id")

    def __init__(self, user_id: str, state: int = REPLAY) -> None:
        self.user_id = user_id
        self.state = state
        #: Live events that arrived during the replay; None once it overflowed (or after the replay).
        self.buffer: list[Event] | None = []
        #: Past every event sent to the client, per partition (None until :meth:`resume` placed it).
        self.last_sent: cursor.Cursor | None = None
        #: What the replay covered: live events it covers are duplicates (None until live).
        self.replayed_through: cursor.Cursor | None = None
        self.unsubscribe: Callable[[], None] | None = None

    # -- protocol hooks ---------------------------------------------------------------------------------

    def buffer_limit(self) -> int:
        """How many live events may wait during the replay before the store is read again instead."""
        raise NotImplementedError

    async def replayed(self, event: Event) -> bool:
        """Send one event read from the store; False stops the replay (the stream is closing).

        ``last_sent`` is advanced past the event after it returns True (it may advance it itself, for a
        frame that carries the resume point after the event).
        """
        raise NotImplementedError

    def deliver(self, event: Event) -> None:
        """Send one live event the client has not had (never blocks)."""
        raise NotImplementedError

    # -- subscription -----------------------------------------------------------------------------------

    def subscribe(self, hub: Hub) -> None:
        """Join the hub for this user's events (before the replay starts)."""
        self.unsubscribe = hub.subscribe(self.user_id, self.on_event)

    def leave(self) -> None:
        """Leave the hub and drop the replay buffer (idempotent)."""
        self.buffer = None
        if self.unsubscribe is not None:
            self.unsubscribe()
            self.unsubscribe = None

    def on_event(self, event: Event) -> None:
        """Take one event from the hub: deliver it live, or buffer it while replaying."""
        state = self.state
        if state == LIVE:
            if self.fresh(event):
                self.deliver(event)
        elif state == REPLAY:
            buffer = self.buffer
            if buffer is not None:
                if len(buffer) >= self.buffer_limit():
                    self.buffer = None  # too many: the next replay round reads them from the store
                else:
                    buffer.append(event)

    def fresh(self, event: Event) -> bool:
        """Whether a live event is new to the client (not covered by the replay); advances ``last_sent``."""
        position = event.position
        if cursor.covered(position, self.replayed_through):
            return False  # read from the store already; its publication just came later than the read
        self.last_sent = cursor.later(self.last_sent, position)
        return True

    # -- resume -----------------------------------------------------------------------------------------

    async def resume(self, store: Store, requested: cursor.Point | None) -> cursor.Resume:
        """Decide where the replay starts (see :func:`.cursor.resolve`) and remember it as sent.

        Raises:
            StoreError: the store did not answer.
        """
        lows, highs = await store.event_bounds()
        start = cursor.resolve(requested, lows, highs)
        self.last_sent = start.start.copy()
        return start

    async def replay(self, store: Store, page: int) -> bool:
        """Replay the user's events after ``last_sent``, then go live with what the buffer holds.

        Args:
            store: the store to read the log from (it applies membership and share-history).
            page: events per query.

        Returns:
            True when the stream went live; False when it left :data:`REPLAY` meanwhile.

        Raises:
            StoreError: the store did not answer.
        """
        sent = self.last_sent
        assert sent is not None, "resume() places the stream first"
        while self.state == REPLAY:
            rows = await store.events_since(self.user_id, list(sent.after), page)
            for event in rows:
                if not await self.replayed(event):
                    return False
                cursor.later(sent, event.position)
            if len(rows) < page:
                if self.buffer is None and self.state == REPLAY:
                    self.buffer = []  # it overflowed during this round: read the store again
                    continue
                break
        buffered = self.buffer or []
        self.buffer = None
        if self.state != REPLAY:
            return False
        self.state = LIVE
        self.replayed_through = sent.copy()
        for event in buffered:
            if self.fresh(event):
                self.deliver(event)
        return True


async def token_verdicts(store: Store, streams: Sequence[tuple[str, TokenClaims]]) -> list[str | None]:
    """Check the tokens of open streams with one store read.

    Args:
        store: the store.
        streams: each stream's user id and token claims.

    Returns:
        Per stream, in order: :data:`DELETED`, :data:`REVOKED`, :data:`EXPIRED` or None (still valid).

    Raises:
        StoreError: the store did not answer.
    """
    if not streams:
        return []
    users = await store.get_users(sorted({user_id for user_id, _ in streams}))
    now = time.time()
    verdicts: list[str | None] = []
    for user_id, claims in streams:
        user = users.get(user_id)
        if user is None or user.deleted_ms is not None:
            verdicts.append(DELETED)
        elif user.token_generation != claims.generation:
            verdicts.append(REVOKED)
        elif claims.expires_at <= now:
            verdicts.append(EXPIRED)
        else:
            verdicts.append(None)
    return verdicts


class Checker:
    """A background task running a manager's revalidation while it has streams.

    Args:
        check: the revalidation (one round).
        active: whether any stream is open (the task ends when none is).
        interval: seconds between rounds.
        name: what to log a failed round as.
    """

    def __init__(
        self, check: Callable[[], Awaitable[None]], active: Callable[[], bool], interval: float, name: str
    ) -> None:
        self._check = check
        self._active = active
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def ensure(self) -> None:
        """Start the task unless it runs."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._forever())

    async def _forever(self) -> None:
        while self._active():
            await asyncio.sleep(self._interval)
            try:
                await self._check()
            except StoreError as exc:  # pragma: no cover - retried next round
                log.warning("%s token check failed: %s", self._name, exc)

    async def stop(self) -> None:
        """Cancel the task and wait for it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
