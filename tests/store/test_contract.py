"""The Store contract, method by method, on SQLite and PostgreSQL alike: users, threads, messages.

Participants, read receipts and the event log are in ``test_contract_members.py``.
"""

from __future__ import annotations

import pytest

from threadline.store.base import Effects, Store
from threadline.store.records import (
    MessageDraft,
    MessageRecord,
    ParticipantRecord,
    ThreadRecord,
    ThreadUpdate,
)

from .helpers import (
    T0,
    at,
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
