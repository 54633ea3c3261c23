"""The webhook part of the store on both engines: cursor-aware pruning, fenced progress, leases, recipients."""

from __future__ import annotations

import pytest

from threadline.store.base import Store
from threadline.store.positions import Cursor, partition_of
from threadline.store.webhooks import DeadLetterRecord, Progress, SubscriptionRecord, read_cursor

from .helpers import T0, make_thread, make_users, send

pytestmark = pytest.mark.anyio


def _sub(sub_id: str) -> SubscriptionRecord:
    return SubscriptionRecord(sub_id, "http://127.0.0.1:9/x", "eventgrid", None, None, None, "active", "code",
                              1, 30, 1440, T0, "")


def _token(store: Store, *positions_: int) -> str:
    """The cursor past the given positions (from the start of every partition)."""
    cursor = Cursor.start(store.partitions)
    for position in positions_:
        cursor.advance(position)
    return cursor.token()


async def _positions(store: Store, after: str | None = None) -> list[int]:
    cursor = read_cursor(after, store.partitions) if after else Cursor.start(store.partitions)
    return [e.position for e in await store.webhooks.events_after(cursor.after, 10)]


async def test_pruning_keeps_events_a_subscription_has_not_handled(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    [created] = await _positions(store)
    await store.webhooks.add_subscription(_sub("wh_1"))  # cursor = the head: the creation is already handled
    sub = await store.webhooks.get_subscription("wh_1")
    assert sub is not None and read_cursor(sub.cursor, store.partitions).covers(created)
    await send(store, tid, a, "x", T0 + 10)
    await send(store, tid, a, "y", T0 + 20)
    x, y = await _positions(store, sub.cursor)
    # Everything is old enough, but only the creation was handled by the subscription.
    assert await store.prune_events(T0 + 1000) == 1
    assert await _positions(store) == [x, y]
    assert await store.webhooks.acquire_lease("wh_1", "n1", T0, 10_000)
    assert await store.webhooks.save_progress("wh_1", "n1", T0, Progress(_token(store, created, x)))
    assert await store.prune_events(T0 + 1000) == 1
    assert await _positions(store) == [y]
    assert await store.webhooks.remove_subscription("wh_1")
    assert await store.prune_events(T0 + 1000) == 1  # no subscription left: plain retention again
    assert await _positions(store) == []


async def test_a_cursor_is_per_partition_so_a_later_lower_position_is_not_skipped(store: Store) -> None:
    """Positions of different partitions are not in commit order: a cursor must not be one number."""
    a, b = await make_users(store, 2)
    first = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    other = first
    for _ in range(64):  # on PostgreSQL (32 partitions) find a thread of another partition
        if store.partitions == 1 or partition_of(other, store.partitions) != partition_of(first, store.partitions):
            break
        other = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    await store.webhooks.add_subscription(_sub("wh_p"))
    sub = await store.webhooks.get_subscription("wh_p")
    assert sub is not None
    for i in range(3):
        await send(store, first, a, f"first {i}", T0 + 10 + i)
    done = await _positions(store, sub.cursor)
    assert len(done) == 3
    handled = read_cursor(sub.cursor, store.partitions)
    for position in done:
        assert handled.advance(position)
    # Committed after everything handled, but on PostgreSQL its position is lower than the last one handled.
    late = (await send(store, other, a, "late", T0 + 20)).value.id
    [event] = await store.webhooks.events_after(handled.after, 10)
    assert event.thread_id == other and b in event.recipients
    assert store.partitions == 1 or event.position < max(done)
    assert late
    # Rewinding since the sends moves every partition back before its first kept event since then.
    everything = handled.copy()
    everything.advance(event.position)
    assert await store.webhooks.acquire_lease("wh_p", "n1", T0, 10_000)
    assert await store.webhooks.save_progress("wh_p", "n1", T0, Progress(everything.token()))
    token = await store.webhooks.rewind("wh_p", T0 + 10)
    assert token is not None
    assert await _positions(store, token) == sorted([*done, event.position])
    # The pruner keeps the late event for a subscription whose cursor is past everything of the first thread.
    assert await store.webhooks.acquire_lease("wh_p", "n1", T0, 10_000)
    assert await store.webhooks.save_progress("wh_p", "n1", T0, Progress(handled.token()))
    await store.prune_events(T0 + 1000)
    assert await _positions(store) == [event.position]
    assert await store.webhooks.rewind("wh_unknown", T0) is None


async def test_lease_fences_progress_and_hands_over_after_expiry(store: Store) -> None:
    await store.webhooks.add_subscription(_sub("wh_2"))
    ws = store.webhooks
    three, five, nine = _token(store, 3 * store.partitions), _token(store, 5 * store.partitions), _token(
        store, 9 * store.partitions)
    assert await ws.acquire_lease("wh_2", "n1", T0, 1000)
    assert not await ws.acquire_lease("wh_2", "n2", T0 + 500, 1000)  # held
    assert await ws.acquire_lease("wh_2", "n1", T0 + 500, 1000)  # renewed by its owner
    assert not await ws.save_progress("wh_2", "n2", T0 + 600, Progress(five))  # not the owner
    dead = DeadLetterRecord(0, "wh_2", "id-1", "Microsoft.Communication.ChatMessageReceived", "19:t", 3,
                            b'{"id":"id-1"}', "HTTP 400", 1, T0)
    assert await ws.save_progress("wh_2", "n1", T0 + 600, Progress(three, dead=[dead]))
    assert await ws.acquire_lease("wh_2", "n2", T0 + 1501, 1000)  # n1 stopped renewing: handover
    assert not await ws.save_progress("wh_2", "n1", T0 + 1600, Progress(nine))  # the old owner is fenced off
    sub = await ws.get_subscription("wh_2")
    assert sub is not None and (sub.cursor, sub.lease_owner) == (three, "n2")
    [kept] = await ws.list_deadletters("wh_2", 10)
    assert (kept.event_id, kept.position, kept.envelope, kept.replay) == ("id-1", 3, b'{"id":"id-1"}', False)
    assert await ws.request_replay("wh_2") == 1
    assert (await ws.list_deadletters("wh_2", 10))[0].replay
    assert await ws.save_progress("wh_2", "n2", T0 + 1600, Progress(three, replayed=[kept.id]))
    assert await ws.list_deadletters("wh_2", 10) == []


async def test_events_after_carry_the_members_of_their_moment(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    await send(store, tid, a, "x", T0 + 10)
    events = await store.webhooks.events_after(Cursor.start(store.partitions).after, 10)
    assert [sorted(e.recipients) for e in events] == [sorted([a, b])] * 2
    heads = await store.webhooks.latest_positions()
    assert len(heads) == store.partitions and max(heads) == max(e.position for e in events)
