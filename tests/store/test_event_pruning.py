"""Pruning and webhook rewind without an index by time (migration 0044), on both engines.

The log is walked in position order: created_ms follows positions closely but not strictly (a
clock steps back), so these logs have one event stamped earlier than the one before it.
"""

from __future__ import annotations

import pytest

from threadline.store.base import Store
from threadline.store.positions import Cursor
from threadline.store.webhooks import Progress, SubscriptionRecord, read_cursor

from .helpers import T0, make_thread, make_users, send

pytestmark = pytest.mark.anyio


async def _log(store: Store) -> list[tuple[int, int]]:
    """Every kept event as (position, created_ms), in position order."""
    events = await store.webhooks.events_after(Cursor.start(store.partitions).after, 100)
    return [(e.position, e.created_ms) for e in events]


async def _stepped_thread(store: Store) -> tuple[str, str, list[tuple[int, int]]]:
    """A thread created at T0 whose sends are stamped T0+10, +30, +20 (the clock stepped back), +40."""
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    for i, at in enumerate((10, 30, 20, 40)):
        await send(store, tid, a, f"m{i}", T0 + at)
    log = await _log(store)
    assert [ms - T0 for _, ms in log] == [0, 10, 30, 20, 40]
    return tid, a, log


async def test_pruning_deletes_the_old_prefix_and_never_an_event_at_or_after_the_cutoff(store: Store) -> None:
    _, _, log = await _stepped_thread(store)
    # Cutoff T0+25: the prefix before the first event at or after it (T0+30) goes; the T0+20 event
    # after it waits for a later prune, and everything at or after the cutoff stays.
    assert await store.prune_events(T0 + 25) == 2
    assert await _log(store) == log[2:]
    lows, _ = await store.event_bounds()
    assert max(lows) == log[1][0]  # the pruned mark names the last position removed
    assert await store.prune_events(T0 + 25) == 0
    # Cutoff T0+31: the T0+30 and T0+20 events are old now, T0+40 is not.
    assert await store.prune_events(T0 + 31) == 2
    assert await _log(store) == log[4:]
    assert await store.prune_events(T0 + 40) == 0  # created at the cutoff: kept
    assert await _log(store) == log[4:]
    assert await store.prune_events(T0 + 41) == 1
    assert await _log(store) == []


async def test_pruning_keeps_what_a_subscription_still_needs_even_when_old(store: Store) -> None:
    tid, a, log = await _stepped_thread(store)
    sub = SubscriptionRecord("wh_prune", "http://127.0.0.1:9/x", "eventgrid", None, None, None, "active", "code",
                             1, 30, 1440, T0, "")
    await store.webhooks.add_subscription(sub)
    # The subscription has handled the creation and the first send only.
    handled = Cursor.start(store.partitions)
    for position, _ in log[:2]:
        handled.advance(position)
    assert await store.webhooks.acquire_lease("wh_prune", "n1", T0, 10_000)
    assert await store.webhooks.save_progress("wh_prune", "n1", T0, Progress(handled.token()))
    assert await store.prune_events(T0 + 1000) == 2  # everything is old; only what was handled goes
    assert await _log(store) == log[2:]
    await send(store, tid, a, "later", T0 + 50)
    assert await store.prune_events(T0 + 1000) == 0
    assert await store.webhooks.remove_subscription("wh_prune")
    assert await store.prune_events(T0 + 1000) == 4
    assert await _log(store) == []


async def test_rewind_finds_the_lowest_position_created_at_or_after_the_time(store: Store) -> None:
    """What ``min(position) ... WHERE created_ms >= since`` found through the dropped index."""
    _, _, log = await _stepped_thread(store)
    sub = SubscriptionRecord("wh_rewind", "http://127.0.0.1:9/x", "eventgrid", None, None, None, "active", "code",
                             1, 30, 1440, T0, "")
    await store.webhooks.add_subscription(sub)  # at the head: everything handled
    added = await store.webhooks.get_subscription("wh_rewind")
    assert added is not None
    head = read_cursor(added.cursor, store.partitions)
    step = store.partitions  # a partition's consecutive positions are this far apart
    for since, first in ((T0 + 20, 2), (T0 + 15, 2), (T0 + 31, 4), (T0 + 5, 1)):
        token = await store.webhooks.rewind("wh_rewind", since)
        assert token is not None
        expected = head.copy()
        expected.after[log[first][0] % step] = log[first][0] - step
        assert read_cursor(token, store.partitions).after == expected.after, since - T0
        assert [p for p, _ in await _log_after(store, token)] == [p for p, _ in log[first:]]
        assert await store.webhooks.acquire_lease("wh_rewind", "n1", T0, 10_000)
        assert await store.webhooks.save_progress("wh_rewind", "n1", T0, Progress(head.token()))
    # Nothing that recent: the cursor stays at the head (a rewind never moves a cursor forward).
    token = await store.webhooks.rewind("wh_rewind", T0 + 1000)
    assert token is not None and read_cursor(token, store.partitions).after == head.after
    assert await store.webhooks.rewind("wh_missing", T0) is None


async def _log_after(store: Store, token: str) -> list[tuple[int, int]]:
    events = await store.webhooks.events_after(read_cursor(token, store.partitions).after, 100)
    return [(e.position, e.created_ms) for e in events]
