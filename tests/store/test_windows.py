"""The store's part of share-history windows and participant caps, on both engines.

An event that reveals a message (``Effects.reveals``) reaches only the members
whose share-history time is at or before the message's creation, live (the
recipients returned by the write) and on replay (``events_since``) alike; read
receipt lists keep to a window; the participant cap is checked in the write.
"""

from __future__ import annotations

import asyncio

import pytest

from threadline.store.base import Effects, Store, TooManyParticipants
from threadline.store.records import (
    MessageDraft,
    MessageRecord,
    ParticipantRecord,
    ReadReceiptRecord,
    ThreadRecord,
)

from .conftest import Engine
from .helpers import T0, make_thread, make_users, optional_events, send, thread_id

pytestmark = pytest.mark.anyio


def revealing(kind: str) -> Effects[MessageRecord]:
    """Effects whose one event reveals the message (as the message service builds them)."""
    return Effects(events=lambda m: [(kind, m.id.encode())], reveals=lambda m: m.created_ms)


async def _add(store: Store, tid: str, by: str, member: ParticipantRecord, now: int) -> None:
    added = await store.add_participants(
        tid, [member], MessageDraft("participantAdded", initiator_id=by), now, optional_events("added")
    )
    assert added.value is not None


async def test_events_revealing_a_message_keep_to_each_members_window(store: Store) -> None:
    a, late = await make_users(store, 2)
    tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
    old = (await send(store, tid, a, "old", T0 + 1)).value
    assert old is not None
    await _add(store, tid, a, ParticipantRecord(late, share_history_ms=T0 + 100), T0 + 100)

    edited = await store.update_message(
        tid, old.id, content="old, edited", metadata=None, now_ms=T0 + 200, effects=revealing("chatMessageEdited")
    )
    deleted = await store.delete_message(tid, old.id, T0 + 201, revealing("chatMessageDeleted"))
    new = await store.send_message(
        tid, MessageDraft("text", sender_id=a, content="new"), T0 + 202, revealing("chatMessageReceived")
    )
    assert new.value is not None
    receipt_effects: Effects[ReadReceiptRecord] = Effects(
        events=lambda r: [("readReceiptReceived", r.message_id.encode())], reveals=lambda _: old.created_ms
    )
    receipt = await store.send_read_receipt(ReadReceiptRecord(tid, a, old.id, T0 + 203), receipt_effects)
    assert [e.recipients for e in edited.events + deleted.events + receipt.events] == [(a,)] * 3
    assert [e.recipients for e in new.events] == [(a, late)]
    assert [e.message_ms for e in edited.events + new.events] == [old.created_ms, new.value.created_ms]

    seen_by_late = await store.events_since(late, 0, 100)
    assert [e.type for e in seen_by_late] == ["added", "chatMessageReceived"]
    seen_by_a = await store.events_since(a, 0, 100)
    assert [e.type for e in seen_by_a][-4:] == [
        "chatMessageEdited", "chatMessageDeleted", "chatMessageReceived", "readReceiptReceived"]


async def test_a_sends_recipients_are_the_members_whose_stay_and_window_cover_it(store: Store) -> None:
    """Live and on replay alike: not a member removed, nor one whose window starts after the message;
    a member back after a removal, with or without an idempotency key, and for an event that reveals
    an older message than the one sent (SQLite reads those recipients apart from the send's UPDATE)."""
    a, gone, back, later, early = await make_users(store, 5)
    tid = (await make_thread(store, a, [gone, back])).value[0].thread_id  # type: ignore[index]
    for who in (gone, back):
        removed = await store.remove_participant(
            tid, who, MessageDraft("participantRemoved", initiator_id=a), T0 + 1, optional_events("removed")
        )
        assert removed.value is not None
    await _add(store, tid, a, ParticipantRecord(back), T0 + 2)
    await _add(store, tid, a, ParticipantRecord(later, share_history_ms=T0 + 500), T0 + 3)
    await _add(store, tid, a, ParticipantRecord(early, share_history_ms=T0 + 150), T0 + 4)

    def draft(text: str) -> MessageDraft:
        return MessageDraft("text", sender_id=a, content=text)

    plain = await store.send_message(tid, draft("plain"), T0 + 200, revealing("chatMessageReceived"))
    keyed_effects: Effects[MessageRecord] = Effects(
        idempotency=(f"send:{a}:{tid}", "k1"), result=lambda m: m.id,
        events=lambda m: [("chatMessageReceived", m.id.encode())], reveals=lambda m: m.created_ms,
    )
    keyed = await store.send_message(tid, draft("keyed"), T0 + 201, keyed_effects)
    older: Effects[MessageRecord] = Effects(
        events=lambda m: [("chatMessageReceived", m.id.encode())], reveals=lambda m: m.created_ms - 100
    )
    revealing_older = await store.send_message(tid, draft("older"), T0 + 202, older)
    unrevealing = await store.send_message(tid, draft("any"), T0 + 203, optional_events("x"))  # type: ignore[arg-type]

    assert [e.recipients for o in (plain, keyed) for e in o.events] == [(a, back, early)] * 2
    assert [e.recipients for e in revealing_older.events] == [(a, back)]  # early's window starts at T0 + 150
    assert [e.recipients for e in unrevealing.events] == [(a, back, later, early)]
    positions = [o.events[0].position for o in (plain, keyed, revealing_older, unrevealing)]
    for user, expected in ((a, positions), (back, positions), (early, positions[:2] + positions[3:]),
                           (later, positions[3:]), (gone, [])):
        replayed = [e.position for e in await store.events_since(user, 0, 100) if e.position in positions]
        assert replayed == expected, user


async def test_thread_lists_give_each_member_only_the_activity_in_its_window(store: Store) -> None:
    """A member whose window starts after a thread's last message sees the thread's creation instead,
    in ``last_message_ms`` and in the order, the ``start_ms`` filter and the paging alike."""
    a, b, c = await make_users(store, 3)
    hidden = (await make_thread(store, a, now=T0)).value[0].thread_id  # type: ignore[index]
    shown = (await make_thread(store, a, [b], now=T0 + 10)).value[0].thread_id  # type: ignore[index]
    await send(store, hidden, a, "before b's window", T0 + 20)
    await _add(store, hidden, a, ParticipantRecord(b, share_history_ms=T0 + 30), T0 + 25)
    await _add(store, hidden, a, ParticipantRecord(c, share_history_ms=T0 + 26), T0 + 26)  # its own add: visible

    def activity(rows: list[ThreadRecord]) -> list[tuple[str, int | None]]:
        return [(t.id, t.last_message_ms) for t in rows]

    assert activity(await store.list_threads(a, start_ms=None, limit=10, after=None)) == [
        (hidden, T0 + 26), (shown, T0 + 10)]
    assert activity(await store.list_threads(c, start_ms=None, limit=10, after=None)) == [(hidden, T0 + 26)]
    as_b = await store.list_threads(b, start_ms=None, limit=10, after=None)
    assert activity(as_b) == [(shown, T0 + 10), (hidden, T0)]
    first = await store.list_threads(b, start_ms=None, limit=1, after=None)
    assert activity(first) == [(shown, T0 + 10)]
    assert activity(await store.list_threads(b, start_ms=None, limit=1, after=(T0 + 10, shown))) == [(hidden, T0)]
    assert await store.list_threads(b, start_ms=None, limit=1, after=(T0, hidden)) == []
    assert activity(await store.list_threads(b, start_ms=T0 + 5, limit=10, after=None)) == [(shown, T0 + 10)]
    # A message inside b's window is b's to see, time and all.
    await send(store, hidden, a, "in b's window", T0 + 40)
    assert activity(await store.list_threads(b, start_ms=T0 + 5, limit=10, after=None)) == [
        (hidden, T0 + 40), (shown, T0 + 10)]


async def test_a_member_who_rejoins_gets_the_window_of_its_new_stay(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    old = (await send(store, tid, a, "old", T0 + 1)).value
    assert old is not None
    first_edit = await store.update_message(
        tid, old.id, content="e1", metadata=None, now_ms=T0 + 2, effects=revealing("chatMessageEdited")
    )
    assert first_edit.events[0].recipients == (a, b)  # whole history in the first stay
    removed = await store.remove_participant(
        tid, b, MessageDraft("participantRemoved", initiator_id=a), T0 + 3, optional_events("removed")
    )
    assert removed.value is not None
    await _add(store, tid, a, ParticipantRecord(b, "Back", T0 + 50), T0 + 50)
    people = await store.list_participants(tid, skip=0, limit=10)
    assert [(p.user_id, p.display_name, p.share_history_ms) for p in people] == [(a, None, 0), (b, "Back", T0 + 50)]
    second_edit = await store.update_message(
        tid, old.id, content="e2", metadata=None, now_ms=T0 + 60, effects=revealing("chatMessageEdited")
    )
    assert second_edit.events[0].recipients == (a,)
    replayed = [(e.type, e.position) for e in await store.events_since(b, 0, 100)]
    assert ("chatMessageEdited", first_edit.events[0].position) in replayed  # heard in the first stay
    assert ("chatMessageEdited", second_edit.events[0].position) not in replayed


async def test_read_receipt_lists_keep_to_a_window(store: Store) -> None:
    a, b = await make_users(store, 2)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    old = (await send(store, tid, a, "old", T0 + 1)).value
    new = (await send(store, tid, a, "new", T0 + 100)).value
    assert old is not None and new is not None
    plain: Effects[ReadReceiptRecord] = Effects()
    await store.send_read_receipt(ReadReceiptRecord(tid, a, new.id, T0 + 200), plain)
    await store.send_read_receipt(ReadReceiptRecord(tid, b, old.id, T0 + 201), plain)
    everything = await store.list_read_receipts(tid, skip=0, limit=10)
    assert [r.message_id for r in everything] == [old.id, new.id]
    assert await store.list_read_receipts(tid, skip=0, limit=10, min_message_ms=0) == everything
    windowed = await store.list_read_receipts(tid, skip=0, limit=10, min_message_ms=T0 + 100)
    assert [(r.user_id, r.message_id) for r in windowed] == [(a, new.id)]
    assert await store.list_read_receipts(tid, skip=1, limit=10, min_message_ms=T0 + 100) == []
    assert await store.list_read_receipts(tid, skip=0, limit=10, min_message_ms=T0 + 101) == []


async def test_the_participant_cap_is_checked_in_the_write(store: Store) -> None:
    a, b, c, d = await make_users(store, 4)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    draft = MessageDraft("participantAdded", initiator_id=a)
    with pytest.raises(TooManyParticipants) as refused:
        await store.add_participants(
            tid, [ParticipantRecord(c), ParticipantRecord(d)], draft, T0 + 1, optional_events("added"), max_members=3
        )
    assert refused.value.limit == 3
    assert [p.user_id for p in await store.list_participants(tid, skip=0, limit=10)] == [a, b]
    assert len(await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)) == 2  # nothing written
    # members already in do not count again
    fits = await store.add_participants(
        tid, [ParticipantRecord(b), ParticipantRecord(c)], MessageDraft("participantAdded", initiator_id=a), T0 + 2,
        optional_events("added"), max_members=3,
    )
    assert fits.value is not None and [p.user_id for p in fits.value.participants or []] == [c]
    # creating a thread: the cap counts distinct members
    thread = await make_thread(store, a, [b, c])
    assert thread.value is not None
    with pytest.raises(TooManyParticipants):
        await store.create_thread(
            _thread(a), [ParticipantRecord(a), ParticipantRecord(b), ParticipantRecord(c)],
            [MessageDraft("topicUpdated", topic="t", initiator_id=a)], Effects(), max_members=2,
        )


def _thread(creator: str) -> ThreadRecord:
    return ThreadRecord(thread_id(), "t", T0, creator)


async def test_ten_concurrent_adds_of_fifty_on_two_nodes_never_pass_the_cap(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    (a,) = await make_users(one, 1)
    crowd = await make_users(one, 500)
    tid = (await make_thread(one, a)).value[0].thread_id  # type: ignore[index]

    async def add(i: int) -> MessageRecord | None:
        store = one if i % 2 else two
        batch = [ParticipantRecord(u) for u in crowd[i * 50:(i + 1) * 50]]
        draft = MessageDraft("participantAdded", initiator_id=a)
        try:
            outcome = await store.add_participants(tid, batch, draft, T0 + i, optional_events("added"), max_members=250)
        except TooManyParticipants:
            return None
        return outcome.value

    results = await asyncio.gather(*(add(i) for i in range(10)))
    accepted = [r for r in results if r is not None]
    assert len(accepted) == 4  # 1 + 4 x 50 = 201; a fifth batch would make 251
    members = await one.list_participants(tid, skip=0, limit=1000)
    assert len(members) == 201
    assert {p.user_id for p in members} == {a, *(p.user_id for r in accepted for p in r.participants or [])}


async def test_concurrent_creates_over_the_cap_write_nothing(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    (a, *others) = await make_users(one, 4)
    members = [ParticipantRecord(u) for u in (a, *others)]

    async def create(i: int) -> bool:
        store = one if i % 2 else two
        thread = _thread(a)
        drafts = [MessageDraft("participantAdded", participants=members, initiator_id=a)]
        try:
            await store.create_thread(thread, members[: 3 + i % 2], drafts, Effects(), max_members=3)
        except TooManyParticipants:
            return False
        return True

    made = await asyncio.gather(*(create(i) for i in range(10)))
    assert made == [i % 2 == 0 for i in range(10)]
    threads = await two.list_threads(a, start_ms=None, limit=100, after=None)
    assert len(threads) == 5
    for thread in threads:
        assert len(await one.list_participants(thread.id, skip=0, limit=10)) == 3
