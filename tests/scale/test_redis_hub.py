"""RedisHub in-process: two hubs (two "nodes") on one PostgreSQL database and one Redis.

Events are real: written through the PostgreSQL store, so their positions are
the database's. Outages are real too: a TCP proxy in front of Redis is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from threadline.server.redis_hub import RedisHub, split_channel
from threadline.server.redis_link import connection_for
from threadline.store.positions import partition_of
from threadline.store.postgres import PostgresStore
from threadline.store.records import Event

from ..store.helpers import T0, make_thread, make_users, send
from .conftest import TcpProxy

pytestmark = pytest.mark.anyio

Hubs = Callable[..., Awaitable[RedisHub]]


@pytest.fixture
async def hubs(pg_store: PostgresStore, redis_url: str) -> AsyncIterator[Hubs]:
    """Start hubs on the test's channel; all are stopped afterwards."""
    started: list[RedisHub] = []

    async def start(url: str | None = None, **options: float) -> RedisHub:
        hub = RedisHub(url or redis_url, pg_store, **options)
        await hub.start()
        started.append(hub)
        return hub

    yield start
    for hub in started:
        await hub.stop()


async def _sends_published(store: PostgresStore, hub: RedisHub, tid: str, sender: str, count: int) -> list[int]:
    """Send ``count`` messages and publish their events through ``hub``; returns their positions."""
    positions = []
    for i in range(count):
        outcome = await send(store, tid, sender, f"m{i}", T0 + i)
        await hub.publish(outcome.events)
        positions += [e.position for e in outcome.events]
    return positions


@contextlib.asynccontextmanager
async def _proxied(redis_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of Redis (to cut or hold), and the Redis URL through it."""
    parts = urlsplit(redis_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    await proxy.start()
    try:
        yield proxy, parts._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    finally:
        await proxy.close()


async def _two_nodes_one_thread(
    store: PostgresStore, hubs: Hubs, via_proxy: str, **b_options: float
) -> tuple[RedisHub, Inbox, list[int], Callable[[int], Awaitable[list[int]]]]:
    """Node A on Redis, node B through the proxy with ``b_options``; bob on B hears alice's thread.

    Returns:
        Node B, bob's inbox on B, the positions it must hold so far (the thread's creation,
        published by A), and a function that sends and publishes ``count`` messages of alice
        through A, returning their positions.
    """
    node_a = await hubs()
    node_b = await hubs(via_proxy, **b_options)
    alice, bob = await make_users(store, 2)
    inbox = Inbox()
    node_b.subscribe(bob, inbox)
    created = await make_thread(store, alice, [bob])
    await node_a.publish(created.events)
    tid = created.value[0].thread_id  # type: ignore[index]
    write = functools.partial(_sends_published, store, node_a, tid, alice)
    return node_b, inbox, [created.events[0].position], write


async def _until_connected(hub: RedisHub, connected: bool, tries: int, pause: float) -> None:
    """Wait (at most ``tries`` pauses) until ``hub.connected`` is ``connected``; the caller asserts it."""
    for _ in range(tries):
        if hub.connected == connected:
            return
        await asyncio.sleep(pause)


class Inbox:
    """Collects what a subscriber receives."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    @property
    def positions(self) -> list[int]:
        return [e.position for e in self.events]

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {self.positions}, expected {count} events")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self.positions


def test_the_links_read_replies_with_hiredis() -> None:
    """``redis[hiredis]`` is a dependency: every node parses every node's batches, a third of the CPU in C.

    (``bench/redis_hub_io.py``; redis-py falls back to its Python parser without a word when hiredis is
    missing, so this is where losing it shows. No connection is made.)
    """
    for connection in (connection_for("redis://127.0.0.1:6379/0", 1.0), connection_for("rediss://example:1/0", 1.0)):
        assert type(connection._parser).__name__ == "_AsyncHiredisParser"


def test_split_channel() -> None:
    assert split_channel("redis://h:1/0") == ("redis://h:1/0", "threadline:events")
    assert split_channel("redis://h:1/2?channel=a:b&ssl_cert_reqs=none") == (
        "redis://h:1/2?ssl_cert_reqs=none", "a:b"
    )


async def test_events_cross_nodes_once_and_in_order(pg_store: PostgresStore, hubs: Hubs) -> None:
    node_a, node_b = await hubs(), await hubs()
    assert node_a.connected and node_b.connected
    alice, bob = await make_users(pg_store, 2)
    on_a, on_b = Inbox(), Inbox()
    node_a.subscribe(alice, on_a)
    unsubscribe = node_b.subscribe(bob, on_b)
    created = await make_thread(pg_store, alice, [bob])
    await node_a.publish(created.events)
    tid = created.value[0].thread_id  # type: ignore[index]

    sent = [await send(pg_store, tid, alice, f"m{i}", T0 + i) for i in range(5)]
    for outcome in sent:
        await node_a.publish(outcome.events)
    expected = [created.events[0].position] + [o.events[0].position for o in sent]
    assert await on_b.wait_for(6) == expected
    assert on_a.positions == expected  # the publishing node delivers locally, once
    first = on_b.events[1]
    assert (first.thread_id, first.type, first.payload, first.recipients) == (
        tid, "chatMessageReceived", sent[0].value.id.encode(), (alice, bob)  # type: ignore[union-attr]
    )

    typing = Event(0, tid, "typingIndicatorReceived", b"{}", T0, (alice, bob))
    await node_a.publish([typing])
    assert await on_b.wait_for(7) == [*expected, 0]

    unsubscribe()
    assert node_b.subscriber_count == 0
    late = await send(pg_store, tid, alice, "late", T0 + 9)
    await node_a.publish(late.events)
    assert await on_a.wait_for(8) == [*expected, 0, late.events[0].position]
    await asyncio.sleep(0.2)
    assert len(on_b.events) == 7


async def test_early_events_wait_for_the_ones_below(pg_store: PostgresStore, hubs: Hubs) -> None:
    node_a, node_b = await hubs(), await hubs(gap_seconds=5.0)
    (alice,) = await make_users(pg_store, 1)
    inbox = Inbox()
    node_b.subscribe(alice, inbox)
    created = await make_thread(pg_store, alice)
    await node_a.publish(created.events)
    tid = created.value[0].thread_id  # type: ignore[index]
    start = created.events[0].position
    assert await inbox.wait_for(1) == [start]
    first = await send(pg_store, tid, alice, "first", T0)
    second = await send(pg_store, tid, alice, "second", T0 + 1)
    await node_a.publish(second.events)  # the later commit is published first
    await asyncio.sleep(0.3)
    assert inbox.positions == [start]
    await node_a.publish(first.events)
    assert await inbox.wait_for(3) == [start, first.events[0].position, second.events[0].position]


async def test_a_gap_in_one_partition_holds_back_no_other(pg_store: PostgresStore, hubs: Hubs) -> None:
    """Ordering is per partition: an early event waits for its own partition only."""
    node_a, node_b = await hubs(), await hubs(gap_seconds=5.0)
    (alice,) = await make_users(pg_store, 1)
    inbox = Inbox()
    node_b.subscribe(alice, inbox)
    threads: dict[int, str] = {}
    made = 0
    while len(threads) < 2 and made < 50:  # two threads of two different partitions
        created = await make_thread(pg_store, alice)
        await node_a.publish(created.events)
        made += 1
        tid = created.value[0].thread_id  # type: ignore[index]
        threads.setdefault(partition_of(tid, pg_store.partitions), tid)
    await inbox.wait_for(made)  # every creation delivered: nothing below is pending
    (held_tid, free_tid) = list(threads.values())
    seen = made
    first = await send(pg_store, held_tid, alice, "first", T0)
    second = await send(pg_store, held_tid, alice, "second", T0 + 1)
    other = await send(pg_store, free_tid, alice, "other partition", T0 + 2)
    await node_a.publish(second.events)  # early in its partition: waits for ``first``
    await node_a.publish(other.events)  # another partition: goes at once
    assert (await inbox.wait_for(seen + 1))[seen:] == [other.events[0].position]
    await asyncio.sleep(0.3)
    assert inbox.positions[seen:] == [other.events[0].position]
    await node_a.publish(first.events)
    assert (await inbox.wait_for(seen + 3))[seen:] == [
        other.events[0].position, first.events[0].position, second.events[0].position,
    ]


async def test_an_unpublished_event_is_read_from_the_database(pg_store: PostgresStore, hubs: Hubs) -> None:
    node_a, node_b = await hubs(), await hubs(gap_seconds=0.2)
    alice, bob = await make_users(pg_store, 2)
    inbox = Inbox()
    node_b.subscribe(bob, inbox)
    created = await make_thread(pg_store, alice, [bob])
    await node_a.publish(created.events)
    tid = created.value[0].thread_id  # type: ignore[index]
    lost = await send(pg_store, tid, alice, "its node died before publishing", T0)
    kept = await send(pg_store, tid, alice, "published", T0 + 1)
    await node_a.publish(kept.events)
    expected = [created.events[0].position, lost.events[0].position, kept.events[0].position]
    assert await inbox.wait_for(3) == expected
    assert inbox.events[1].payload == lost.value.id.encode()  # type: ignore[union-attr]
    assert inbox.events[1].recipients == (bob,)
    await node_a.publish(lost.events)  # published after all: not delivered twice
    await asyncio.sleep(0.3)
    assert inbox.positions == expected


async def test_publish_returns_before_its_send_and_a_stopping_node_sends_it(
    pg_store: PostgresStore, hubs: Hubs
) -> None:
    """A request is answered once its events are handed over; stopping the node still sends them."""
    node_a, node_b = await hubs(), await hubs(gap_seconds=30.0)  # a gap filled from the database: too late
    alice, bob = await make_users(pg_store, 2)
    inbox = Inbox()
    node_b.subscribe(bob, inbox)
    created = await make_thread(pg_store, alice, [bob])
    tid = created.value[0].thread_id  # type: ignore[index]
    sent = await send(pg_store, tid, alice, "last words", T0)
    await node_a.publish(created.events)
    assert node_a._published() == (0, 0)  # handed over: the send starts at the end of this turn
    while node_a._published() == (0, 0):
        await asyncio.sleep(0)
    await node_a.publish(sent.events)  # while that send is out: it waits for the next one
    await node_a.stop()
    assert node_a._published() == (2, 2)
    expected = [created.events[0].position, sent.events[0].position]
    assert await inbox.wait_for(2, timeout=2.0) == expected


async def test_publish_survives_a_dead_redis(pg_store: PostgresStore, hubs: Hubs) -> None:
    dead = "redis://127.0.0.1:1/0?channel=nowhere"
    hub = await hubs(dead)
    assert not hub.connected
    (alice,) = await make_users(pg_store, 1)
    created = await make_thread(pg_store, alice)
    await hub.publish(created.events)
    tid = created.value[0].thread_id  # type: ignore[index]
    inbox = Inbox()
    hub.subscribe(alice, inbox)
    outcome = await send(pg_store, tid, alice, "hello", T0)
    began = time.monotonic()
    await hub.publish(outcome.events)
    assert time.monotonic() - began < 0.5
    assert inbox.positions == [outcome.events[0].position]


async def test_losing_redis_loses_nothing(pg_store: PostgresStore, hubs: Hubs, redis_url: str) -> None:
    """Node B's Redis link is cut while A writes; B's subscriber still gets every event, in order, once."""
    async with _proxied(redis_url) as (proxy, via_proxy):
        node_b, inbox, expected, write = await _two_nodes_one_thread(
            pg_store, hubs, via_proxy, gap_seconds=0.2, poll_seconds=0.3, reconnect_max_seconds=0.5
        )
        expected += await write(3)
        assert await inbox.wait_for(4) == expected
        proxy.cut()
        await _until_connected(node_b, False, 50, 0.05)
        assert not node_b.connected
        expected += await write(4)  # during the outage: B reads them from the database
        assert await inbox.wait_for(8) == expected
        proxy.resume()
        await _until_connected(node_b, True, 100, 0.05)
        assert node_b.connected
        expected += await write(3)
        assert await inbox.wait_for(11) == expected
        await asyncio.sleep(0.5)
        assert inbox.positions == expected


async def test_a_silent_link_is_noticed_and_recovered(pg_store: PostgresStore, hubs: Hubs, redis_url: str) -> None:
    """B's link to Redis stays open but nothing goes through: B notices by PING, as when it is cut."""
    async with _proxied(redis_url) as (proxy, via_proxy):
        node_b, inbox, expected, write = await _two_nodes_one_thread(
            pg_store, hubs, via_proxy, gap_seconds=0.2, poll_seconds=0.3, reconnect_max_seconds=0.5,
            idle_seconds=0.4, publish_timeout=0.5,
        )
        expected += await write(2)
        assert await inbox.wait_for(3) == expected
        await asyncio.sleep(1.0)  # idle longer than idle_seconds: PINGs answered, still connected
        assert node_b.connected
        proxy.hold()
        began = time.monotonic()
        while node_b.connected and time.monotonic() - began < 3.0:
            await asyncio.sleep(0.05)
        assert not node_b.connected  # 0.4 s idle + 0.2 s for the PONG, give or take a timer
        assert time.monotonic() - began < 2.0
        expected += await write(3)  # meanwhile: B reads them from the database
        assert await inbox.wait_for(6) == expected
        proxy.hold(False)
        await _until_connected(node_b, True, 100, 0.05)
        assert node_b.connected
        expected += await write(2)
        assert await inbox.wait_for(8) == expected
        await asyncio.sleep(0.5)
        assert inbox.positions == expected


async def test_own_batches_are_dropped_before_decoding(
    pg_store: PostgresStore, hubs: Hubs, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A message that starts as a node's own batches do is dropped by it unread; the others log it as malformed."""
    node_a, node_b, source = await hubs(), await hubs(), await hubs()
    (alice,) = await make_users(pg_store, 1)
    on_a, on_b = Inbox(), Inbox()
    node_a.subscribe(alice, on_a)
    node_b.subscribe(alice, on_b)
    url, channel = split_channel(redis_url)
    raw = aioredis.Redis.from_url(url)
    expected: list[int] = []
    tid = ""

    async def publish_then_event(junk: bytes) -> list[logging.LogRecord]:
        """Publish ``junk``, then an event: once A and B have the event, they have read the junk."""
        nonlocal tid
        caplog.clear()
        await raw.publish(channel, junk)
        if not tid:
            outcome = await make_thread(pg_store, alice)
            tid = outcome.value[0].thread_id  # type: ignore[index]
        else:
            outcome = await send(pg_store, tid, alice, "m", T0)
        await source.publish(outcome.events)
        expected.append(outcome.events[0].position)
        assert await on_a.wait_for(len(expected)) == expected
        assert await on_b.wait_for(len(expected)) == expected
        return [r for r in caplog.records if "malformed" in r.getMessage()]

    try:
        with caplog.at_level(logging.WARNING, logger="threadline.server.events"):
            assert len(await publish_then_event(node_b._own_prefix + b"\xc1 not msgpack")) == 2  # A, source
            assert len(await publish_then_event(node_a._own_prefix + b"\xc1 not msgpack")) == 2  # B, source
            assert len(await publish_then_event(b"\x92\xa3odd\xc1")) == 3  # nobody's: all three
        assert node_a.connected and node_b.connected
        assert set(node_a.nodes_seen) == set(node_b.nodes_seen) == {source.node}
    finally:
        await raw.aclose()


async def test_the_first_publish_after_an_outage_goes_through(
    pg_store: PostgresStore, hubs: Hubs, redis_url: str
) -> None:
    """Once B has subscribed again after losing Redis, its publications reach A at once, the first one too."""
    async with _proxied(redis_url) as (proxy, via_proxy):
        node_a = await hubs(gap_seconds=30.0)  # a gap filled from the database would come far too late
        node_b = await hubs(via_proxy, reconnect_max_seconds=0.2)
        (alice,) = await make_users(pg_store, 1)
        inbox = Inbox()
        node_a.subscribe(alice, inbox)
        created = await make_thread(pg_store, alice)
        await node_b.publish(created.events)
        assert await inbox.wait_for(1) == [created.events[0].position]
        proxy.cut()
        proxy.resume()  # the connections are gone, new ones get through
        await _until_connected(node_b, False, 100, 0.02)
        await _until_connected(node_b, True, 100, 0.05)
        assert node_b.connected
        tid = created.value[0].thread_id  # type: ignore[index]
        sent = await send(pg_store, tid, alice, "after", T0)
        await node_b.publish(sent.events)
        assert await inbox.wait_for(2, timeout=2.0) == [created.events[0].position, sent.events[0].position]
        await node_b.flush()  # the send's answer from Redis may come after A has the event
        assert node_b._publish_failures == 0
