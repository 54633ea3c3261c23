"""The webhook part of the store on both engines: cursor-aware pruning, fenced progress, leases, recipients."""

from __future__ import annotations

import pytest

from threadline.store.base import Store
from threadline.store.webhooks import DeadLetterRecord, Progress, SubscriptionRecord

from .helpers import T0, make_thread, make_users, send

pytestmark = pytest.mark.anyio


def _sub(sub_id: str) -> SubscriptionRecord:
    return SubscriptionRecord(sub_id, "http://127.0.0.1:9/x", "eventgrid", None, None, None, "active", "code",
                              1, 30, 1440, T0, 0)


async def test_pruning_keeps_events_a_subscription_has_not_handled(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    await store.webhooks.add_subscription(_sub("wh_1"))  # cursor = 1: the creation is already handled
    assert (await store.webhooks.get_subscription("wh_1")).cursor == 1  # type: ignore[union-attr]
    await send(store, tid, a, "x", T0 + 10)
    await send(store, tid, a, "y", T0 + 20)
    # Everything is old enough, but only position 1 was handled by the subscription.
    assert await store.prune_events(T0 + 1000) == 1
    assert [e.position for e in await store.webhooks.events_after(0, 10)] == [2, 3]
    assert await store.webhooks.acquire_lease("wh_1", "n1", T0, 10_000)
    assert await store.webhooks.save_progress("wh_1", "n1", T0, Progress(2))
    assert await store.prune_events(T0 + 1000) == 1
    assert await store.webhooks.remove_subscription("wh_1")
    assert await store.prune_events(T0 + 1000) == 1  # no subscription left: plain retention again
    assert await store.webhooks.events_after(0, 10) == []


async def test_lease_fences_progress_and_hands_over_after_expiry(store: Store) -> None:
    await store.webhooks.add_subscription(_sub("wh_2"))
    ws = store.webhooks
    assert await ws.acquire_lease("wh_2", "n1", T0, 1000)
    assert not await ws.acquire_lease("wh_2", "n2", T0 + 500, 1000)  # held
    assert await ws.acquire_lease("wh_2", "n1", T0 + 500, 1000)  # renewed by its owner
    assert not await ws.save_progress("wh_2", "n2", T0 + 600, Progress(5))  # not the owner
    dead = DeadLetterRecord(0, "wh_2", "id-1", "Microsoft.Communication.ChatMessageReceived", "19:t", 3,
                            b'{"id":"id-1"}', "HTTP 400", 1, T0)
    assert await ws.save_progress("wh_2", "n1", T0 + 600, Progress(3, dead=[dead]))
    assert await ws.acquire_lease("wh_2", "n2", T0 + 1501, 1000)  # n1 stopped renewing: handover
    assert not await ws.save_progress("wh_2", "n1", T0 + 1600, Progress(9))  # the old owner is fenced off
    sub = await ws.get_subscription("wh_2")
    assert sub is not None and (sub.cursor, sub.lease_owner) == (3, "n2")
    [kept] = await ws.list_deadletters("wh_2", 10)
    assert (kept.event_id, kept.position, kept.envelope, kept.replay) == ("id-1", 3, b'{"id":"id-1"}', False)
    assert await ws.request_replay("wh_2") == 1
    assert (await ws.list_deadletters("wh_2", 10))[0].replay
    assert await ws.save_progress("wh_2", "n2", T0 + 1600, Progress(3, replayed=[kept.id]))
    assert await ws.list_deadletters("wh_2", 10) == []


async def test_events_after_carry_the_members_of_their_moment(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    await send(store, tid, a, "x", T0 + 10)
    events = await store.webhooks.events_after(0, 10)
    assert [sorted(e.recipients) for e in events] == [sorted([a, b])] * 2
    assert await store.webhooks.latest_position() == 2
