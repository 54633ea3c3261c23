"""Concurrent writers, through two stores on one database (two "nodes")."""

from __future__ import annotations

import asyncio

import pytest

from threadline.store.base import Effects
from threadline.store.positions import partition_of
from threadline.store.records import MessageDraft, MessageRecord, ParticipantRecord

from .conftest import Engine
from .helpers import T0, at, bounds, make_thread, make_users, nth, optional_events, send, thread_id

pytestmark = pytest.mark.anyio


async def test_fifty_concurrent_sends_get_unique_ordered_sequence_ids(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    a, b = await make_users(one, 2)
    tid = (await make_thread(one, a, [b])).value[0].thread_id  # type: ignore[index]
    outcomes = await asyncio.gather(
        *(send(one if i % 2 else two, tid, a if i % 3 else b, f"m{i}", T0 + 1000) for i in range(50))
    )
    records = sorted((o.value for o in outcomes if o.value is not None), key=lambda m: m.sequence_id)
    assert [m.sequence_id for m in records] == list(range(3, 53))
    ids = [int(m.id) for m in records]
    assert ids == sorted(ids) and len(set(ids)) == 50  # ids rise with sequence ids
    assert ids[0] == T0 + 1000
    positions = sorted(e.position for o in outcomes for e in o.events)
    assert nth(one, tid, positions) == list(range(2, 52))  # dense in the thread's partition
    listed = await one.list_messages(tid, before_seq=None, min_created_ms=0, limit=100)
    assert [m.sequence_id for m in listed] == list(range(52, 0, -1))


async def test_concurrent_idempotent_creates_make_one_thread(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    (a,) = await make_users(one, 1)
    key = (f"create-thread:{a}", "same-request")
    tids = [thread_id() for _ in range(12)]
    outcomes = await asyncio.gather(
        *(make_thread(one if i % 2 else two, a, tid=tid, idempotency=key) for i, tid in enumerate(tids))
    )
    winners = [o for o in outcomes if o.value is not None]
    assert len(winners) == 1
    winner = winners[0].value[0].thread_id  # type: ignore[index]
    assert sorted(o.replayed or "" for o in outcomes if o.value is None) == [winner] * 11
    existing = [t for t in tids if await one.get_thread(t) is not None]
    assert existing == [winner]
    assert [t.id for t in await two.list_threads(a, start_ms=None, limit=20, after=None)] == [winner]


async def test_concurrent_sends_with_one_repeatability_key_write_once(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    (a,) = await make_users(one, 1)
    tid = (await make_thread(one, a)).value[0].thread_id  # type: ignore[index]
    outcomes = await asyncio.gather(
        *(send(one if i % 2 else two, tid, a, "once", T0 + 5, key="retry-me") for i in range(20))
    )
    written = [o.value for o in outcomes if o.value is not None]
    assert len(written) == 1
    assert [o.replayed for o in outcomes if o.value is None] == [written[0].id] * 19
    listed = await two.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [m.content for m in listed] == ["once", None, None]


async def test_concurrent_adds_of_one_member_announce_it_once(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    a, b = await make_users(one, 2)
    tid = (await make_thread(one, a)).value[0].thread_id  # type: ignore[index]
    outcomes = await asyncio.gather(
        *(
            (one if i % 2 else two).add_participants(
                tid, [ParticipantRecord(b)], MessageDraft("participantAdded", initiator_id=a), T0 + 1,
                optional_events("added"),
            )
            for i in range(10)
        )
    )
    assert sum(1 for o in outcomes if o.value is not None) == 1
    assert [p.user_id for p in await one.list_participants(tid, skip=0, limit=10)] == [a, b]
    removals = await asyncio.gather(
        *(
            (one if i % 2 else two).remove_participant(
                tid, b, MessageDraft("participantRemoved", initiator_id=a), T0 + 2, optional_events("removed")
            )
            for i in range(10)
        )
    )
    assert sum(1 for o in removals if o.value is not None) == 1
    assert [p.user_id for p in await two.list_participants(tid, skip=0, limit=10)] == [a]
    listed = await one.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [m.type for m in listed] == ["participantRemoved", "participantAdded", "topicUpdated", "participantAdded"]


async def test_event_positions_become_visible_in_order(engine: Engine) -> None:
    """A reader that sees position P of a partition has already seen every position below P there.

    Writers on two stores append to four threads of one user while a reader on
    a third store polls: in every partition, every answer must be the gap-free
    prefix 1..N, and the highest position ``event_bounds`` reports for the
    partition must already be readable.
    """
    one, two, reader = engine.first, await engine.open(), await engine.open()
    (a,) = await make_users(one, 1)
    tids = [(await make_thread(one, a)).value[0].thread_id for _ in range(4)]  # type: ignore[index]
    done = asyncio.Event()

    async def write(store_index: int, tid: str) -> None:
        store = one if store_index % 2 else two
        for i in range(40):
            await send(store, tid, a, f"w{store_index}-{i}", T0 + i)

    polls = 0

    count = one.partitions

    def by_partition(positions: list[int]) -> dict[int, list[int]]:
        parts: dict[int, list[int]] = {}
        for p in positions:
            parts.setdefault(p % count, []).append(p // count)
        return parts

    async def read() -> None:
        nonlocal polls
        while not done.is_set():
            _, highs = await reader.event_bounds()
            seen = by_partition([e.position for e in await reader.events_since(a, 0, 100_000)])
            for ranks in seen.values():
                assert ranks == list(range(1, len(ranks) + 1)), "a position became visible before a lower one"
            for part, high in enumerate(highs):
                readable = len(seen.get(part, []))
                assert readable >= high // count, f"event_bounds reported {high} but only {readable} are readable"
            polls += 1
            await asyncio.sleep(0)

    reading = asyncio.create_task(read())
    await asyncio.gather(*(write(i, tids[i % 4]) for i in range(8)))
    done.set()
    await reading
    assert polls > 5
    final = [e.position for e in await reader.events_since(a, 0, 100_000)]
    expected: dict[int, int] = {}
    for tid in tids:  # a creation and 80 sends per thread
        part = partition_of(tid, count)
        expected[part] = expected.get(part, 0) + 81
    assert {part: len(ranks) for part, ranks in by_partition(final).items()} == expected
    assert all(ranks == list(range(1, len(ranks) + 1)) for ranks in by_partition(final).values())


async def test_live_recipients_agree_with_replay_under_membership_churn(engine: Engine) -> None:
    """The recipients a write returns are exactly the users whose replay holds the event.

    Sends on two stores race removals, re-additions and a user deletion in the
    same thread; afterwards every event's recipients must match ``events_since``
    of every user, so live delivery and resume never disagree.
    """
    one, two = engine.first, await engine.open()
    a, b, c, d = await make_users(one, 4)
    created = await make_thread(one, a, [b, c, d])
    tid = created.value[0].thread_id  # type: ignore[index]
    events = list(created.events)

    async def sends(store_index: int) -> None:
        store = one if store_index else two
        for i in range(30):
            events.extend((await send(store, tid, a, f"s{store_index}-{i}", T0 + i)).events)

    async def churn(user: str, store_index: int) -> None:
        store = one if store_index else two
        for i in range(6):
            removed = await store.remove_participant(
                tid, user, MessageDraft("participantRemoved", initiator_id=a), T0 + i, optional_events("removed")
            )
            events.extend(removed.events)
            added = await store.add_participants(
                tid, [ParticipantRecord(user)], MessageDraft("participantAdded", initiator_id=a), T0 + i,
                optional_events("added"),
            )
            events.extend(added.events)

    async def delete_later() -> None:
        await asyncio.sleep(0.02)
        assert await two.delete_user(d, T0 + 99)

    await asyncio.gather(sends(0), sends(1), churn(b, 0), churn(c, 1), delete_later())
    last = await send(one, tid, a, "last", T0 + 100)
    assert d not in last.events[0].recipients
    events.extend(last.events)
    positions = sorted(e.position for e in events)
    assert nth(one, tid, positions) == list(range(1, len(events) + 1))
    replayed = {u: {e.position for e in await two.events_since(u, 0, 10_000)} for u in (a, b, c, d)}
    for event in events:
        hearing = {u for u in (a, b, c, d) if event.position in replayed[u]}
        assert set(event.recipients) == hearing, f"position {event.position} ({event.type})"
        assert len(event.recipients) == len(hearing)
    assert replayed[a] == set(positions)
    assert last.events[0].position not in replayed[d]  # the deleted user hears nothing after
    assert await bounds(one, tid) == (0, len(events))


async def test_a_failed_write_leaves_no_gap_and_no_trace(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    (a,) = await make_users(one, 1)
    tid = (await make_thread(one, a)).value[0].thread_id  # type: ignore[index]
    await send(one, tid, a, "first", T0 + 1)

    def broken(_: object) -> list[tuple[str, bytes]]:
        raise ValueError("the event factory failed")

    with pytest.raises(ValueError, match="factory failed"):
        await two.send_message(tid, MessageDraft("text", sender_id=a, content="lost"), T0 + 2, Effects(events=broken))
    after = await send(two, tid, a, "second", T0 + 3)
    assert [e.position for e in after.events] == [at(one, tid, 3)]
    assert await bounds(one, tid) == (0, 3)
    assert nth(one, tid, [e.position for e in await one.events_since(a, 0, 10)]) == [1, 2, 3]
    listed = await one.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert "lost" not in [m.content for m in listed]


async def test_membership_changes_without_events_take_the_next_position(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    a, b = await make_users(one, 2)
    tid = (await make_thread(one, a)).value[0].thread_id  # type: ignore[index]
    before = await send(one, tid, a, "before", T0 + 1)
    quiet: Effects[MessageRecord | None] = Effects()
    added = await two.add_participants(
        tid, [ParticipantRecord(b)], MessageDraft("participantAdded", initiator_id=a), T0 + 2, quiet
    )
    assert added.value is not None and added.events == []
    during = await send(one, tid, a, "during", T0 + 3)
    assert during.events[0].recipients == (a, b)
    removed = await two.remove_participant(
        tid, b, MessageDraft("participantRemoved", initiator_id=a), T0 + 4, quiet
    )
    assert removed.value is not None and removed.events == []
    after = await send(one, tid, a, "after", T0 + 5)
    assert after.events[0].recipients == (a,)  # a stay ended with no event ends at the last position
    assert before.events[0].recipients == (a,)
    assert [e.position for e in await one.events_since(b, 0, 10)] == [during.events[0].position]
