"""The Store contract, method by method, on SQLite and PostgreSQL alike."""

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
    ThreadRecord,
    ThreadUpdate,
)

from .conftest import Engine
from .helpers import (
    T0,
    at,
    bounds,
    make_thread,
    make_users,
    message_events,
    nth,
    optional_events,
    send,
    thread_id,
    user_id,
)

pytestmark = pytest.mark.anyio


# -- users ------------------------------------------------------------------------------------------


async def test_users_create_get_revoke_delete(store: Store) -> None:
    a, b = await make_users(store, 2)
    user = await store.get_user(a)
    assert user is not None
    assert (user.id, user.created_ms, user.token_generation, user.deleted_ms) == (a, T0, 0, None)
    assert await store.get_user(user_id()) is None

    found = await store.get_users([a, b, a, user_id()])
    assert sorted(found) == sorted([a, b])
    assert found[b].id == b
    assert await store.get_users([]) == {}

    assert await store.revoke_tokens(a) == 1
    assert await store.revoke_tokens(a) == 2
    assert await store.revoke_tokens(user_id()) is None

    assert await store.delete_user(a, T0 + 5) is True
    assert await store.delete_user(a, T0 + 6) is False
    deleted = await store.get_user(a)
    assert deleted is not None
    assert (deleted.deleted_ms, deleted.token_generation) == (T0 + 5, 3)
    assert await store.revoke_tokens(a) is None


# -- threads ------------------------------------------------------------------------------------------


async def test_create_thread_allocates_ids_members_and_events(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = thread_id()
    thread = ThreadRecord(tid, "Lunch", T0, a, metadata={"z": "1", "a": "2"}, retention={"kind": "none"})
    members = [ParticipantRecord(a), ParticipantRecord(b, "Bob", T0 - 1000, {"role": "guest"})]
    drafts = [
        MessageDraft("participantAdded", participants=members, initiator_id=a),
        MessageDraft("topicUpdated", topic="Lunch", initiator_id=a),
    ]
    effects: Effects[list[MessageRecord]] = Effects(events=lambda msgs: [("chatThreadCreated", b"{}")])
    outcome = await store.create_thread(thread, members, drafts, effects)

    assert outcome.replayed is None and outcome.value is not None
    assert [(m.sequence_id, m.id, m.version, m.type, m.created_ms) for m in outcome.value] == [
        (1, str(T0), T0, "participantAdded", T0),
        (2, str(T0 + 1), T0 + 1, "topicUpdated", T0),
    ]
    assert [(e.position, e.thread_id, e.type, e.payload, e.created_ms, e.recipients) for e in outcome.events] == [
        (at(store, tid, 1), tid, "chatThreadCreated", b"{}", T0, (a, b))
    ]

    got = await store.get_thread(tid)
    assert got is not None
    assert (got.id, got.topic, got.created_ms, got.created_by, got.deleted_ms, got.last_message_ms) == (
        tid, "Lunch", T0, a, None, T0,
    )
    assert list(got.metadata or {}) == ["z", "a"]  # key order kept
    assert got.retention == {"kind": "none"}
    assert await store.get_thread(thread_id()) is None

    people = await store.list_participants(tid, skip=0, limit=10)
    assert [(p.user_id, p.display_name, p.share_history_ms, p.metadata) for p in people] == [
        (a, None, 0, None),
        (b, "Bob", T0 - 1000, {"role": "guest"}),
    ]
    assert [p.user_id for p in await store.list_participants(tid, skip=1, limit=10)] == [b]
    assert [p.user_id for p in await store.list_participants(tid, skip=0, limit=1)] == [a]
    assert await store.count_participants(tid) == 2

    listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [m.sequence_id for m in listed] == [2, 1]
    assert listed[0].topic == "Lunch"
    added = listed[1].participants or []
    assert [(p.user_id, p.display_name, p.share_history_ms) for p in added] == [
        (a, None, 0), (b, "Bob", T0 - 1000)
    ]


async def test_get_access_reads_thread_and_live_membership(store: Store) -> None:
    a, b, c = await make_users(store, 3)
    created = await make_thread(store, a, [b])
    tid = created.value[0].thread_id if created.value else ""
    thread, member = await store.get_access(tid, a)
    assert thread is not None and thread.id == tid
    assert member is not None and member.user_id == a
    thread, member = await store.get_access(tid, c)
    assert thread is not None and member is None
    assert await store.get_access(thread_id(), a) == (None, None)


async def test_update_thread_topic_change_writes_a_message_every_update_an_event(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    effects: Effects[ThreadUpdate] = Effects(
        events=lambda u: [("chatThreadPropertiesUpdated", u.thread.topic.encode())]
    )
    renamed = await store.update_thread(
        tid, topic="New", metadata=None, draft=MessageDraft("topicUpdated", topic="New", initiator_id=a),
        now_ms=T0 + 50, effects=effects,
    )
    assert renamed.value is not None and renamed.value.message is not None
    message = renamed.value.message
    assert (message.sequence_id, message.type, message.topic) == (3, "topicUpdated", "New")
    assert renamed.value.thread.topic == "New"
    assert [(e.type, e.payload, e.recipients) for e in renamed.events] == [
        ("chatThreadPropertiesUpdated", b"New", (a, b))
    ]

    # the same topic again, with metadata: an event, no message
    same = await store.update_thread(
        tid, topic="New", metadata={"k": "v"}, draft=MessageDraft("topicUpdated", topic="New", initiator_id=a),
        now_ms=T0 + 60, effects=effects,
    )
    assert same.value is not None and same.value.message is None
    assert same.value.thread.metadata == {"k": "v"}
    assert [e.type for e in same.events] == ["chatThreadPropertiesUpdated"]
    thread = await store.get_thread(tid)
    assert thread is not None
    assert (thread.topic, thread.metadata, thread.last_message_ms) == ("New", {"k": "v"}, T0 + 50)
    listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [m.type for m in listed] == ["topicUpdated", "topicUpdated", "participantAdded"]

    # a deleted thread is not updated and announces nothing
    await store.delete_thread(tid, T0 + 70, Effects())
    gone = await store.update_thread(tid, topic="X", metadata=None, draft=None, now_ms=T0 + 80, effects=effects)
    assert (gone.value, gone.events) == (None, [])


async def test_delete_thread_once(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    effects: Effects[ThreadRecord] = Effects(events=lambda t: [("chatThreadDeleted", t.id.encode())])
    first = await store.delete_thread(tid, T0 + 9, effects)
    assert first.value is not None and first.value.deleted_ms == T0 + 9
    assert [(e.type, e.recipients) for e in first.events] == [("chatThreadDeleted", (a, b))]
    again = await store.delete_thread(tid, T0 + 10, effects)
    assert (again.value, again.events) == (None, [])
    thread = await store.get_thread(tid)
    assert thread is not None and thread.deleted_ms == T0 + 9


async def test_list_threads_orders_by_activity_then_id_and_pages(store: Store) -> None:
    a, b = await make_users(store, 2)
    # Ids chosen so byte order ("B" < "a") differs from a case-insensitive order.
    t_old = (await make_thread(store, a, now=T0 + 1, tid="19:old@thread.v2")).value[0].thread_id  # type: ignore[index]
    t_upper = (await make_thread(store, a, now=T0 + 3, tid="19:B@thread.v2")).value[0].thread_id  # type: ignore[index]
    t_lower = (await make_thread(store, a, now=T0 + 3, tid="19:a@thread.v2")).value[0].thread_id  # type: ignore[index]
    t_left = (await make_thread(store, a, [b], now=T0 + 9)).value[0].thread_id  # type: ignore[index]
    removed = await store.remove_participant(
        t_left, a, MessageDraft("participantRemoved", initiator_id=a), T0 + 9, optional_events("removed")
    )
    assert removed.value is not None

    everything = await store.list_threads(a, start_ms=None, limit=10, after=None)
    assert [t.id for t in everything] == [t_lower, t_upper, t_old]
    first = await store.list_threads(a, start_ms=None, limit=2, after=None)
    assert [t.id for t in first] == [t_lower, t_upper]
    last = first[-1]
    assert last.last_message_ms is not None
    rest = await store.list_threads(a, start_ms=None, limit=2, after=(last.last_message_ms, last.id))
    assert [t.id for t in rest] == [t_old]
    recent = await store.list_threads(a, start_ms=T0 + 2, limit=10, after=None)
    assert [t.id for t in recent] == [t_lower, t_upper]
    assert [t.id for t in await store.list_threads(b, start_ms=None, limit=10, after=None)] == [t_left]

    await send(store, t_old, a, "bump", T0 + 20)
    assert [t.id for t in await store.list_threads(a, start_ms=None, limit=1, after=None)] == [t_old]


# -- messages ------------------------------------------------------------------------------------------


async def test_send_allocates_sequence_and_monotonic_epoch_ms_ids(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    first = await send(store, tid, a, "one", T0 + 10)
    same_ms = await send(store, tid, b, "two", T0 + 10)
    clock_back = await send(store, tid, a, "three", T0 + 5)
    got = [(o.value.sequence_id, o.value.id, o.value.version, o.value.created_ms)  # type: ignore[union-attr]
           for o in (first, same_ms, clock_back)]
    assert got == [(3, str(T0 + 10), T0 + 10, T0 + 10), (4, str(T0 + 11), T0 + 11, T0 + 10),
                   (5, str(T0 + 12), T0 + 12, T0 + 5)]
    assert nth(store, tid, [e.position for o in (first, same_ms, clock_back) for e in o.events]) == [2, 3, 4]
    assert first.events[0].recipients == (a, b)
    assert first.events[0].payload == str(T0 + 10).encode()

    stored = await store.get_message(tid, str(T0 + 11))
    assert stored is not None
    assert (stored.sender_id, stored.content, stored.type, stored.sequence_id) == (b, "two", "text", 4)
    assert await store.get_message(tid, "12345") is None
    assert await store.get_message(thread_id(), str(T0 + 11)) is None


async def test_list_messages_pages_newest_first(store: Store) -> None:
    (a,) = await make_users(store, 1)
    tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
    for i in range(10):
        await send(store, tid, a, f"m{i}", T0 + 100 + i)
    page = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=4)
    assert [m.sequence_id for m in page] == [12, 11, 10, 9]
    page = await store.list_messages(tid, before_seq=9, min_created_ms=0, limit=4)
    assert [m.sequence_id for m in page] == [8, 7, 6, 5]
    page = await store.list_messages(tid, before_seq=5, min_created_ms=0, limit=4)
    assert [m.sequence_id for m in page] == [4, 3, 2, 1]
    assert await store.list_messages(tid, before_seq=1, min_created_ms=0, limit=4) == []
    recent = await store.list_messages(tid, before_seq=None, min_created_ms=T0 + 107, limit=10)
    assert [m.content for m in recent] == ["m9", "m8", "m7"]


async def test_update_and_delete_message(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    sent = (await send(store, tid, a, "draft", T0 + 10)).value
    assert sent is not None

    edited = await store.update_message(
        tid, sent.id, content="final", metadata=None, now_ms=T0 + 100, effects=message_events("chatMessageEdited")
    )
    assert edited.value is not None
    assert (edited.value.content, edited.value.version, edited.value.edited_ms) == ("final", T0 + 100, T0 + 100)
    assert [(e.type, e.payload, e.recipients) for e in edited.events] == [
        ("chatMessageEdited", sent.id.encode(), (a, b))
    ]
    # An earlier clock still moves the version forward; None leaves content as it is.
    meta = await store.update_message(
        tid, sent.id, content=None, metadata={"k": "v"}, now_ms=T0 + 50, effects=message_events()
    )
    assert meta.value is not None
    assert (meta.value.content, meta.value.metadata, meta.value.version) == ("final", {"k": "v"}, T0 + 101)

    deleted = await store.delete_message(tid, sent.id, T0 + 200, message_events("chatMessageDeleted"))
    assert deleted.value is not None
    assert (deleted.value.deleted_ms, deleted.value.version) == (T0 + 200, T0 + 200)
    assert [e.type for e in deleted.events] == ["chatMessageDeleted"]
    again = await store.delete_message(tid, sent.id, T0 + 300, message_events())
    assert (again.value, again.events) == (None, [])
    late_edit = await store.update_message(
        tid, sent.id, content="x", metadata=None, now_ms=T0 + 300, effects=message_events()
    )
    assert (late_edit.value, late_edit.events) == (None, [])
    tomb = await store.get_message(tid, sent.id)
    assert tomb is not None and (tomb.deleted_ms, tomb.content) == (T0 + 200, "final")


async def test_idempotent_send_replays_the_first_result(store: Store) -> None:
    (a,) = await make_users(store, 1)
    tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
    first = await send(store, tid, a, "once", T0 + 10, key="k1")
    assert first.value is not None and first.replayed is None
    again = await send(store, tid, a, "once", T0 + 20, key="k1")
    assert (again.value, again.replayed, again.events) == (None, first.value.id, [])
    other = await send(store, tid, a, "twice", T0 + 30, key="k2")
    assert other.value is not None and other.value.sequence_id == 4
    listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [m.content for m in listed] == ["twice", "once", None, None]


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
