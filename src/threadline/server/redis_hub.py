"""The cross-node event hub: committed events travel between nodes over Redis pub/sub.

Every node publishes the events its requests committed to one channel and
subscribes to it; each node hands what it receives to its own subscribers
through a :class:`~threadline.server.events.LocalHub`.

Delivery is in position order within each event partition
(:mod:`threadline.store.positions`). A partition's positions come from the
database in commit order, but two nodes publish independently, so its event 12
may arrive before its event 11. The hub holds an early event until the ones
below it in its partition have arrived; when a gap stays open longer than
``gap_seconds`` (its publisher crashed between commit and publish, or Redis
dropped the message) the hub reads the missing positions from the database for
each locally subscribed user, so nothing committed is lost and nothing is
delivered twice. Partitions never wait for one another.

Redis is never in the way of a request: :meth:`RedisHub.publish` delivers to
local subscribers at once and sends to Redis with a short timeout; if Redis is
down it logs and returns. A background task reconnects, and the gap logic
catches up from the database on the events published meanwhile.

Nodes that share a Redis but not a database must use different channels: add
``?channel=<name>`` to the Redis URL (default ``threadline:events``).

The Redis I/O itself, one dedicated connection to publish and one to listen, is in
``redis_link.py``. A node's own batches come back to it on the channel: they are
recognised by their first bytes (the node's id), before any decoding, and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import secrets
import time
from collections.abc import Callable, Sequence

import msgspec
from redis.exceptions import RedisError

from threadline.server import metrics
from threadline.store.base import Store, StoreError
from threadline.store.positions import Cursor
from threadline.store.records import Event

from .events import LocalHub, Subscriber
from .redis_link import Publisher, Subscription
from .redis_wire import DEFAULT_CHANNEL, split_channel
from .redis_wire import Batch as _Batch
from .redis_wire import Wire as _Wire
from .redis_wire import decode as _decode
from .redis_wire import encode as _encode
from .turns import TurnBatcher

__all__ = ["DEFAULT_CHANNEL", "RedisHub", "split_channel"]

log = logging.getLogger("threadline.server.events")

class RedisHub:
    """The :class:`~threadline.server.events.Hub` for several nodes, over Redis pub/sub.

    Args:
        url: ``redis://`` or ``rediss://`` URL, optionally with ``?channel=<name>``.
        store: the database, to read the positions a gap leaves out.
        gap_seconds: how long an early event waits for the ones below it.
        publish_timeout: seconds a publish may take before it is given up.
        reconnect_max_seconds: the longest pause between reconnection attempts.
        poll_seconds: while Redis is down, how often local users' events are read from the database.
        idle_seconds: after this long without a message, PING Redis; no reply within half of it more
            and the subscription is lost (reconnected as after any error).
    """

    def __init__(
        self,
        url: str,
        store: Store,
        *,
        gap_seconds: float = 0.5,
        publish_timeout: float = 1.0,
        reconnect_max_seconds: float = 5.0,
        poll_seconds: float = 1.0,
        idle_seconds: float = 10.0,
    ) -> None:
        self.url, self.channel = split_channel(url)
        self.node = secrets.token_hex(8)
        # How every batch of this node starts (msgpack: array of 2, then the node's id; ``redis_wire.py``).
        self._own_prefix = _encode(_Batch(self.node, []))[:-1]
        #: Other nodes heard from on the channel (at most 64): node id -> epoch seconds of its last batch.
        self.nodes_seen: dict[str, float] = {}
        self._store = store
        self._gap_seconds = gap_seconds
        self._publish_timeout = publish_timeout
        self._reconnect_max = reconnect_max_seconds
        self._poll_seconds = poll_seconds
        self._idle_seconds = idle_seconds
        self._users: dict[str, int] = {}
        self._local = LocalHub()
        self._publisher: Publisher | None = None
        self._listener: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        # Ordered delivery per partition: positions below ``_next[p]`` are delivered in partition p;
        # ``_pending[p]`` holds its early ones (a heap by position).
        self._partitions = 1
        self._next: list[int] = [0]
        self._pending: dict[int, list[tuple[int, Event]]] = {}
        self._pending_positions: set[int] = set()
        self._gap_since: float | None = None
        self._gap_timer: asyncio.TimerHandle | None = None
        self._filling: asyncio.Task[None] | None = None
        self._fill_running = False
        self._publish_failures = 0
        #: the events published during one turn of the loop, sent as one message (``turns.py``).
        self._turns: TurnBatcher[_Wire] = TurnBatcher(self._publish_turn)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening (in the background: a node starts even while Redis is down).

        Raises:
            StoreError: the database could not tell the latest position.
        """
        self._publisher = Publisher(self.url, self.channel, connect_timeout=self._publish_timeout)
        _, highs = await self._store.event_bounds()
        self._partitions = len(highs)
        self._next = [high + self._partitions for high in highs]
        metrics.hub_connected(False)  # until the first subscription
        metrics.batches_of_hub(self._published)
        self._listener = asyncio.create_task(self._listen(), name="threadline-redis-hub")
        with contextlib.suppress(TimeoutError):  # don't hold the start up for long on a Redis outage
            await asyncio.wait_for(self._connected.wait(), 2.0)

    async def stop(self) -> None:
        """Send what was published, then stop listening and close the Redis connections.

        The last send ends within ``publish_timeout``, Redis down or not.
        """
        await self.flush()
        for task in (self._listener, self._filling):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._listener = self._filling = None
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        if self._publisher is not None:
            await self._publisher.close()
            self._publisher = None
        metrics.batches_of_hub(None)
        await self._local.stop()

    async def flush(self) -> None:
        """Wait until every event published so far has been sent to Redis (or its send has failed)."""
        await self._turns.drain()

    def _published(self) -> tuple[int, int]:
        """Messages published to the other nodes (one per turn) and the events they carried."""
        return self._turns.sends, self._turns.items

    @property
    def connected(self) -> bool:
        """Whether the hub is subscribed to the channel right now."""
        return self._connected.is_set()

    @property
    def subscriber_count(self) -> int:
        """How many local subscribers are registered."""
        return self._local.subscriber_count

    # -- the Hub protocol ----------------------------------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver to local subscribers, then hand the events over for the next send to the other nodes.

        Returns before that send is done (``turns.py`` says why), unless many events already
        wait for it. Never raises for Redis.
        """
        if not events:
            return
        self._receive(events)
        if self._publisher is None or not self._connected.is_set():
            # Redis is down: don't make the request wait for it. The other nodes notice the
            # gap in positions and read these events from the database.
            self._publish_failures += 1
            return
        await self._turns.add([
            _Wire(e.position, e.thread_id, e.type, e.payload, e.created_ms, list(e.recipients)) for e in events
        ])

    async def _publish_turn(self, wires: list[_Wire], since: float) -> None:
        """Send the events gathered since ``since`` to the other nodes as one message (``turns.py``).

        The send ends by ``since + publish_timeout``: no request waits longer. Never raises.
        """
        publisher = self._publisher
        if publisher is None:
            return
        try:
            await publisher.publish(_encode(_Batch(self.node, wires)), since + self._publish_timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            self._publish_failures += 1
            if self._publish_failures == 1 or self._publish_failures % 100 == 0:
                log.warning(
                    "could not publish events to Redis (%d so far): %s; other nodes' clients will "
                    "get them from the database", self._publish_failures, exc,
                )
        else:
            self._publish_failures = 0

    def subscribe(self, user_id: str, subscriber: Subscriber) -> Callable[[], None]:
        """Register a local subscriber for a user; returns the function that unregisters it."""
        unsubscribe_local = self._local.subscribe(user_id, subscriber)
        self._users[user_id] = self._users.get(user_id, 0) + 1
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if done:
                return
            done = True
            unsubscribe_local()
            left = self._users.get(user_id, 0) - 1
            if left > 0:
                self._users[user_id] = left
            else:
                self._users.pop(user_id, None)

        return unsubscribe

    # -- receiving -----------------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Subscribe, read, and resubscribe after a failure, with a growing pause."""
        pause = 0.1
        subscription = Subscription(
            self.url, self.channel, connect_timeout=self._publish_timeout, idle_seconds=self._idle_seconds
        )
        while True:
            try:
                await subscription.open()
                if not self._connected.is_set():
                    log.info("subscribed to Redis channel %s", self.channel)
                self._connected.set()
                metrics.hub_connected(True)
                pause = 0.1
                if self._pending or self._gap_since is not None:
                    self._arm_gap_timer()
                await subscription.receive(self._on_message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._connected.is_set():
                    log.warning("lost the Redis subscription: %s; reconnecting", exc)
                self._connected.clear()
                metrics.hub_connected(False)
                if self._publisher is not None:
                    self._publisher.reconnect_later()  # its connection most likely went down too
                # Whatever was published meanwhile is missed: note the gap, to fill it from the store.
                if self._gap_since is None:
                    self._gap_since = time.monotonic()
                self._arm_gap_timer()  # meanwhile, local users get their events from the database
                await asyncio.sleep(pause)
                pause = min(pause * 2, self._reconnect_max)
            finally:
                await subscription.close()

    def _on_message(self, data: bytes) -> None:
        if data.startswith(self._own_prefix):
            return  # this node's own batch: delivered locally when published
        try:
            batch = _decode(data)
        except msgspec.DecodeError as exc:
            log.warning("ignored a malformed message on %s: %s", self.channel, exc)
            return
        self.nodes_seen[batch.node] = time.time()
        if len(self.nodes_seen) > 64:  # restarted nodes come back under new ids: keep the most recent
            del self.nodes_seen[min(self.nodes_seen, key=self.nodes_seen.__getitem__)]
        self._receive([
            Event(w.position, w.thread_id, w.type, w.payload, w.created_ms, tuple(w.recipients))
            for w in batch.events
        ])

    def _receive(self, events: Sequence[Event]) -> None:
        """Deliver in position order per partition: ephemeral ones at once, early ones once the gap closes."""
        count = self._partitions
        for event in events:
            position = event.position
            if position == 0:
                self._local.deliver([event])
            elif position >= self._next[position % count] and position not in self._pending_positions:
                heapq.heappush(self._pending.setdefault(position % count, []), (position, event))
                self._pending_positions.add(position)
        self._drain()

    def _drain(self) -> None:
        if self._fill_running:
            return  # the fill delivers what it read, then drains
        ready: list[Event] = []
        count, following = self._partitions, self._next
        for part, pending in list(self._pending.items()):
            while pending and pending[0][0] <= following[part]:
                position, event = heapq.heappop(pending)
                self._pending_positions.discard(position)
                if position == following[part]:
                    ready.append(event)
                    following[part] += count
            if not pending:
                del self._pending[part]
        if ready:
            ready.sort(key=lambda e: e.position)
            self._local.deliver(ready)
        if self._pending:
            if self._gap_since is None:
                self._gap_since = time.monotonic()
            self._arm_gap_timer()
        elif self._connected.is_set():
            self._gap_since = None

    def _arm_gap_timer(self) -> None:
        if self._gap_timer is not None or (self._filling is not None and not self._filling.done()):
            return
        loop = asyncio.get_running_loop()
        since = self._gap_since if self._gap_since is not None else time.monotonic()
        wait = self._gap_seconds if self._connected.is_set() else max(self._gap_seconds, self._poll_seconds)
        delay = max(0.0, since + wait - time.monotonic())
        self._gap_timer = loop.call_later(delay, self._gap_expired)

    def _gap_expired(self) -> None:
        self._gap_timer = None
        if self._filling is None or self._filling.done():
            self._filling = asyncio.create_task(self._fill_gap(), name="threadline-redis-hub-gap")

    async def _fill_gap(self) -> None:
        """Read the positions nobody published from the database, for each local user."""
        self._fill_running = True
        try:
            await self._fill()
        finally:
            self._fill_running = False
            self._filling = None
        self._drain()
        if not self._connected.is_set():
            self._arm_gap_timer()

    async def _fill(self) -> None:
        try:
            _, highs = await self._store.event_bounds()
        except StoreError as exc:
            log.warning("cannot fill an event gap from the database: %s; retrying", exc)
            self._gap_since = time.monotonic()
            return
        count = self._partitions
        delivered = [following - count for following in self._next]
        if len(highs) != count or all(high <= done for high, done in zip(highs, delivered, strict=True)):
            self._gap_since = None if self._connected.is_set() else time.monotonic()
            return
        users = list(self._users)
        found: dict[int, list[Event]] = {}
        page = 500
        try:
            for user in users:
                cursor = Cursor(delivered)
                while True:
                    rows = await self._store.events_since(user, cursor.after, page)
                    inside = [e for e in rows if e.position <= highs[e.position % count]]
                    for event in inside:
                        found.setdefault(event.position, []).append(event)
                        cursor.advance(event.position)
                    if len(rows) < page or not inside:
                        break
        except StoreError as exc:
            log.warning("cannot fill an event gap from the database: %s; retrying", exc)
            self._gap_since = time.monotonic()
            return
        # Events that arrived meanwhile at or below ``highs`` are in ``found`` already (for local users).
        for part, pending in list(self._pending.items()):
            while pending and pending[0][0] <= highs[part]:
                position, _ = heapq.heappop(pending)
                self._pending_positions.discard(position)
            if not pending:
                del self._pending[part]
        for part, high in enumerate(highs):
            if high >= self._next[part]:
                log.info("filled partition %d's positions %d..%d from the database", part, self._next[part], high)
                self._next[part] = high + count
        for position in sorted(found):
            self._local.deliver(found[position])
        self._gap_since = None if self._connected.is_set() else time.monotonic()
