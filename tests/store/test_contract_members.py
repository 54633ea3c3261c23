"""The Store contract on SQLite and PostgreSQL alike: participants, read receipts, the event log."""

from __future__ import annotations

import time

import pytest

from threadline.store.base import Effects, Store
from threadline.store.positions import partition_of
from threadline.store.records import (
    MessageDraft,
    MessageRecord,
    ParticipantRecord,
    ReadReceiptRecord,
)

from .conftest import Engine
from .helpers import (
    T0,
    bounds,
    make_thread,
    make_users,
    nth,
    optional_events,
    send,
    user_id,
)

pytestmark = pytest.mark.anyio



# -- participants ------------------------------------------------------------------------------------------


async def test_add_participants_leaves_members_as_they_are_and_announces_only_new_ones(store: Store) -> None:
    a, b, c = await make_users(store, 3)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    draft = MessageDraft("participantAdded", initiator_id=a)
    added = await store.add_participants(
        tid, [ParticipantRecord(b, "Bobby", T0), ParticipantRecord(c, "Carol", T0 + 5, {"k": "v"})], draft,
        T0 + 10, optional_events("chatParticipantsAdded"),
    )
    assert added.value is not None
    assert [p.user_id for p in added.value.participants or []] == [c]
    assert added.value.sequence_id == 3
    assert [(e.type, e.recipients) for e in added.events] == [("chatParticipantsAdded", (a, b, c))]
    people = await store.list_participants(tid, skip=0, limit=10)
    assert [(p.user_id, p.display_name, p.share_history_ms, p.metadata) for p in people] == [
        (a, None, 0, None), (b, None, 0, None), (c, "Carol", T0 + 5, {"k": "v"})
    ]

    nothing_new = await store.add_participants(
        tid, [ParticipantRecord(c, "Caro", 0, {"x": "y"})], MessageDraft("participantAdded", initiator_id=a),
        T0 + 20, optional_events("chatParticipantsAdded"),
    )
    assert (nothing_new.value, nothing_new.events) == (None, [])
    assert [m.sequence_id for m in await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=1)] == [3]
    assert await store.list_participants(tid, skip=0, limit=10) == people


async def test_add_participants_idempotency_keeps_nothing_for_a_no_op(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
    key = (f"add:{a}:{tid}", "r1")

    def effects() -> Effects[MessageRecord | None]:
        return Effects(idempotency=key, result=lambda m: "added", events=lambda m: [("added", b"")] if m else [])

    noop = await store.add_participants(tid, [ParticipantRecord(a)], MessageDraft("participantAdded"), T0, effects())
    assert (noop.value, noop.replayed) == (None, None)
    first = await store.add_participants(tid, [ParticipantRecord(b)], MessageDraft("participantAdded"), T0, effects())
    assert first.value is not None and first.replayed is None
    again = await store.add_participants(tid, [ParticipantRecord(b)], MessageDraft("participantAdded"), T0, effects())
    assert (again.value, again.replayed, again.events) == (None, "added", [])


async def test_membership_intervals_bound_recipients_and_events_since(store: Store) -> None:
    a, b = await make_users(store, 2)
    created = await make_thread(store, a, [b])
    tid = created.value[0].thread_id  # type: ignore[index]
    p_create = created.events[0].position
    m1 = await send(store, tid, a, "before", T0 + 1)
    removed = await store.remove_participant(
        tid, b, MessageDraft("participantRemoved", initiator_id=a), T0 + 2, optional_events("removed")
    )
    assert removed.value is not None
    assert [p.user_id for p in removed.value.participants or []] == [b]
    assert removed.events[0].recipients == (a, b)  # the removed member hears of the removal
    m2 = await send(store, tid, a, "while away", T0 + 3)
    assert m2.events[0].recipients == (a,)
    readded = await store.add_participants(
        tid, [ParticipantRecord(b)], MessageDraft("participantAdded", initiator_id=a), T0 + 4,
        optional_events("added"),
    )
    assert readded.events[0].recipients == (a, b)
    m3 = await send(store, tid, b, "back", T0 + 5)
    assert m3.events[0].recipients == (a, b)

    positions = [p_create, m1.events[0].position, removed.events[0].position, m2.events[0].position,
                 readded.events[0].position, m3.events[0].position]
    assert positions == sorted(positions) and len(set(positions)) == 6
    seen_by_b = await store.events_since(b, 0, 100)
    assert [e.position for e in seen_by_b] == [positions[i] for i in (0, 1, 2, 4, 5)]
    assert all(e.recipients == (b,) for e in seen_by_b)
    assert [e.type for e in seen_by_b] == ["chatThreadCreated", "chatMessageReceived", "removed", "added",
                                            "chatMessageReceived"]
    assert [e.position for e in await store.events_since(a, 0, 100)] == positions
    assert [e.position for e in await store.events_since(b, positions[2], 100)] == positions[4:]
    assert [e.position for e in await store.events_since(a, 0, 2)] == positions[:2]
    assert await store.count_participants(tid) == 2

    gone = await store.remove_participant(
        tid, user_id(), MessageDraft("participantRemoved"), T0 + 6, optional_events("removed")
    )
    assert (gone.value, gone.events) == (None, [])


async def test_deleting_a_user_ends_its_memberships(store: Store) -> None:
    a, b = await make_users(store, 2)
    created = await make_thread(store, a, [b])
    tid = created.value[0].thread_id  # type: ignore[index]
    assert await store.delete_user(b, T0 + 1)
    after = await send(store, tid, a, "after", T0 + 2)
    assert after.events[0].recipients == (a,)
    assert [e.position for e in await store.events_since(b, 0, 10)] == [created.events[0].position]
    assert [p.user_id for p in await store.list_participants(tid, skip=0, limit=10)] == [a]
    assert await store.list_threads(b, start_ms=None, limit=10, after=None) == []


# -- read receipts ------------------------------------------------------------------------------------------


async def test_read_receipts_keep_the_latest_per_reader(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]

    def effects(key: str | None = None) -> Effects[ReadReceiptRecord]:
        return Effects(
            idempotency=("receipt", key) if key else None, result=lambda r: r.message_id,
            events=lambda r: [("readReceiptReceived", r.message_id.encode())],
        )

    first = await store.send_read_receipt(ReadReceiptRecord(tid, a, "m1", T0 + 10), effects("r1"))
    assert first.value is not None and [e.recipients for e in first.events] == [(a, b)]
    await store.send_read_receipt(ReadReceiptRecord(tid, b, "m2", T0 + 20), effects())
    await store.send_read_receipt(ReadReceiptRecord(tid, a, "m3", T0 + 30), effects())
    replay = await store.send_read_receipt(ReadReceiptRecord(tid, a, "m9", T0 + 40), effects("r1"))
    assert (replay.value, replay.replayed, replay.events) == (None, "m1", [])

    receipts = await store.list_read_receipts(tid, skip=0, limit=10)
    assert [(r.user_id, r.message_id, r.read_ms) for r in receipts] == [(a, "m3", T0 + 30), (b, "m2", T0 + 20)]
    assert [r.user_id for r in await store.list_read_receipts(tid, skip=1, limit=10)] == [b]
    assert [r.user_id for r in await store.list_read_receipts(tid, skip=0, limit=1)] == [a]


# -- events ------------------------------------------------------------------------------------------------


async def test_event_bounds_and_pruning(store: Store) -> None:
    count = store.partitions
    assert await store.event_bounds() == (list(range(count)), list(range(count)))  # every partition empty
    (a,) = await make_users(store, 1)
    tid = (await make_thread(store, a, now=T0)).value[0].thread_id  # type: ignore[index]
    await send(store, tid, a, "x", T0 + 10)
    await send(store, tid, a, "y", T0 + 20)
    assert await bounds(store, tid) == (0, 3)
    assert await store.prune_events(T0 + 5) == 1
    assert await bounds(store, tid) == (1, 3)
    assert nth(store, tid, [e.position for e in await store.events_since(a, 0, 10)]) == [2, 3]
    assert await store.prune_events(T0 + 5) == 0
    assert await store.prune_events(T0 + 100) == 2
    assert await bounds(store, tid) == (3, 3)
    assert await store.events_since(a, 0, 10) == []
    nxt = await send(store, tid, a, "z", T0 + 200)
    assert nth(store, tid, [e.position for e in nxt.events]) == [4]
    lows, highs = await store.event_bounds()
    others = [k for k in range(count) if k != partition_of(tid, count)]
    assert [(lows[k], highs[k]) for k in others] == [(k, k) for k in others]  # other partitions untouched


async def test_ping_and_reopen_keep_data(engine: Engine, store: Store) -> None:
    await store.ping()
    (a,) = await make_users(store, 1)
    again = await engine.open()  # migrations already applied: opening again changes nothing
    assert (await again.get_user(a)) is not None
    await again.ping()


async def test_prune_idempotency_forgets_old_keys(store: Store) -> None:
    (a,) = await make_users(store, 1)
    tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
    first = await send(store, tid, a, "once", T0 + 10, key="k1")
    assert first.value is not None
    assert await store.prune_idempotency(0) == 0  # recorded now: nothing is that old
    assert (await send(store, tid, a, "once", T0 + 20, key="k1")).replayed == first.value.id
    assert await store.prune_idempotency(int(time.time() * 1000) + 3_600_000) == 1
    again = await send(store, tid, a, "once", T0 + 30, key="k1")
    assert again.replayed is None and again.value is not None and again.value.id != first.value.id
