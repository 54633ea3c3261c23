"""The sends made in one turn of the event loop are one PostgreSQL statement; each fails alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from threadline.store.base import Effects, NotAllowed
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, MessageRecord

from .helpers import T0, make_thread, make_users

pytestmark = pytest.mark.anyio


def _effects(sender: str, tid: str, key: str | None) -> Effects[MessageRecord]:
    def payload(m: MessageRecord) -> list[tuple[str, bytes]]:
        body = {"id": m.id, "sequenceId": str(m.sequence_id), "message": m.content}
        return [("chatMessageReceived", json.dumps(body).encode())]

    return Effects(
        idempotency=(f"send:{sender}:{tid}", key) if key else None, result=lambda m: m.id, events=payload,
        reveals=lambda m: m.created_ms,
    )


async def test_a_turns_sends_to_one_thread_are_one_statement_and_each_fails_alone(postgres_url: str) -> None:
    store = PostgresStore(postgres_url, min_size=1, max_size=1)  # one connection: every query goes through it
    await store.open()
    statements: list[str] = []
    try:
        a, b, stranger = await make_users(store, 3)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        # a first turn, before the logger: asyncpg introspects the array types once per connection
        await asyncio.gather(*(
            store.send_message(tid, MessageDraft("text", sender_id=s, content="warm"), T0 + 5, _effects(s, tid, None))
            for s in (a, b)
        ))
        pool = store._pool
        assert pool is not None
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: statements.append(str(record.query)))
        plan: list[tuple[str, str, str | None]] = [
            (a, "m0", None), (b, "m1", None), (stranger, "not a member", None), (a, "m3", "k"),
            (a, "m3 again", "k"), (b, "m5", None),
        ]
        # gather starts every send in one turn; the turn ends with one statement for the thread
        outcomes: list[Any] = await asyncio.gather(
            *(store.send_message(tid, MessageDraft("text", sender_id=s, content=c), T0 + 10 + n, _effects(s, tid, k))
              for n, (s, c, k) in enumerate(plan)),
            return_exceptions=True,
        )
        assert store.send_turn.statements == 2 and store.send_turn.sends == 8  # the warm-up's and this turn's
        assert len(statements) == 1 and "threadline_send_batch" in statements[0]
        listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=20)
        replay = await store.events_since(b, 0, 100)
    finally:
        await store.close()
    refused = outcomes[2]
    assert isinstance(refused, NotAllowed) and refused.thread_missing is False
    assert outcomes[4].value is None and outcomes[4].replayed == outcomes[3].value.id  # the key, once
    written = [o.value for n, o in enumerate(outcomes) if n not in (2, 4)]
    assert [m.content for m in written] == ["m0", "m1", "m3", "m5"]
    assert [m.sequence_id for m in written] == [5, 6, 7, 8]  # in the turn's order, after 2 system + 2 warm-up
    ids = [int(m.id) for m in written]
    assert ids == sorted(ids) and len(set(ids)) == 4
    events = [o.events[0] for n, o in enumerate(outcomes) if n not in (2, 4)]
    positions = [e.position for e in events]
    assert positions == sorted(positions) and len(set(positions)) == 4
    for message, event in zip(written, events, strict=True):
        assert set(event.recipients) == {a, b} and event.message_ms == int(message.created_ms)
        assert json.loads(event.payload) == {"id": message.id, "sequenceId": str(message.sequence_id),
                                             "message": message.content}
    assert [m.content for m in listed if m.type == "text"] == ["m5", "m3", "m1", "m0", "warm", "warm"]  # none refused
    logged = [(e.position, e.payload) for e in replay if e.type == "chatMessageReceived"][2:]
    assert logged == [(e.position, e.payload) for e in events]


async def test_a_turns_sends_to_a_deleted_thread_are_each_refused(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        a, b = await make_users(store, 2)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        await store.delete_thread(tid, T0 + 1, Effects())
        outcomes = await asyncio.gather(
            *(store.send_message(tid, MessageDraft("text", sender_id=s, content="late"), T0 + 2, _effects(s, tid, None))
              for s in (a, b, a)),
            return_exceptions=True,
        )
        assert store.send_turn.statements == 1 and store.send_turn.sends == 3
    finally:
        await store.close()
    assert all(isinstance(o, NotAllowed) and o.thread_missing for o in outcomes)


async def test_sends_to_different_threads_in_one_turn_are_one_statement_in_lock_order(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        (a,) = await make_users(store, 1)
        tids = [(await make_thread(store, a)).value[0].thread_id for _ in range(3)]  # type: ignore[index]
        outcomes = await asyncio.gather(
            *(store.send_message(t, MessageDraft("text", sender_id=a, content=f"{t}:{k}"), T0 + 2, _effects(a, t, None))
              for t in tids for k in range(4))
        )
        assert store.send_turn.statements == 1 and store.send_turn.sends == 12
        for t in tids:
            listed = await store.list_messages(t, before_seq=None, min_created_ms=0, limit=20)
            assert [m.content for m in listed if m.type == "text"] == [f"{t}:{k}" for k in (3, 2, 1, 0)]
    finally:
        await store.close()
    assert [o.value.sequence_id for o in outcomes] == [3, 4, 5, 6] * 3  # type: ignore[union-attr]


async def test_two_nodes_turns_over_the_same_threads_never_deadlock_or_lose_a_send(postgres_url: str) -> None:
    """Two stores (two nodes) send to the same threads in turns of many threads at once, five times over."""
    one, two = PostgresStore(postgres_url), PostgresStore(postgres_url)
    await one.open()
    await two.open()
    try:
        (a,) = await make_users(one, 1)
        tids = [(await make_thread(one, a)).value[0].thread_id for _ in range(8)]  # type: ignore[index]

        async def turn(store: PostgresStore, order: list[str], tag: str) -> list[Any]:
            return await asyncio.gather(*(
                store.send_message(t, MessageDraft("text", sender_id=a, content=f"{tag}:{k}"), T0 + 2,
                                   _effects(a, t, None))
                for k, t in enumerate(order)
            ))

        for n in range(5):
            forward = [tids[(k * 3) % 8] for k in range(24)]
            await asyncio.gather(turn(one, forward, f"one{n}"), turn(two, list(reversed(forward)), f"two{n}"))
        statements = one.send_turn.statements + two.send_turn.statements
        per_thread = [await one.list_messages(t, before_seq=None, min_created_ms=0, limit=200) for t in tids]
    finally:
        await one.close()
        await two.close()
    assert statements == 10  # one per turn per node
    for listed in per_thread:
        texts = [m for m in listed if m.type == "text"]
        assert len(texts) == 5 * 2 * 3  # 24 sends over 8 threads per turn, two nodes, five rounds
        assert sorted(m.sequence_id for m in texts) == list(range(3, 3 + len(texts)))  # no gap, no repeat


async def test_a_send_without_an_event_shares_the_turn(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        (a,) = await make_users(store, 1)
        tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
        quiet: Effects[MessageRecord] = Effects()
        outcomes = await asyncio.gather(
            store.send_message(tid, MessageDraft("text", sender_id=a, content="loud"), T0 + 2, _effects(a, tid, None)),
            store.send_message(tid, MessageDraft("text", sender_id=a, content="quiet"), T0 + 2, quiet),
            store.send_message(tid, MessageDraft("text", sender_id=a, content="loud2"), T0 + 2, _effects(a, tid, None)),
        )
        assert (store.send_turn.statements, store.send_turn.sends) == (1, 3)
    finally:
        await store.close()
    assert [o.value.sequence_id for o in outcomes] == [3, 4, 5]  # type: ignore[union-attr]
    assert [len(o.events) for o in outcomes] == [1, 0, 1]
    assert outcomes[0].events[0].position < outcomes[2].events[0].position


async def test_close_waits_for_the_sends_of_a_turn(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    (a,) = await make_users(store, 1)
    tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
    sends = [
        asyncio.ensure_future(
            store.send_message(tid, MessageDraft("text", sender_id=a, content=f"s{k}"), T0 + 2, _effects(a, tid, None))
        )
        for k in range(5)
    ]
    await asyncio.sleep(0)  # the sends wait in the turn; close() comes before it ends
    await store.close()
    assert all(s.done() for s in sends)
    assert [s.result().value.sequence_id for s in sends] == [3, 4, 5, 6, 7]  # type: ignore[union-attr]
