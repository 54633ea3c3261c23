"""A send on PostgreSQL is one statement and its commit; it writes exactly what the general path writes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from threadline.store.base import Effects, NotAllowed, StoreError
from threadline.store.positions import partition_of
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, MessageRecord

from .conftest import Engine
from .helpers import T0, make_thread, make_users, send

pytestmark = pytest.mark.anyio


def _payload(m: MessageRecord) -> list[tuple[str, bytes]]:
    # The shape of the service's payload: ids as strings, and user text that looks like numbers.
    body = {"id": m.id, "version": str(m.version), "sequenceId": str(m.sequence_id), "message": m.content}
    return [("chatMessageReceived", json.dumps(body).encode())]


async def test_a_send_on_postgres_is_one_statement_and_writes_what_the_general_path_writes(
    postgres_url: str,
) -> None:
    store = PostgresStore(postgres_url, min_size=1, max_size=1)  # one connection: every query goes through it
    await store.open()
    statements: list[str] = []
    try:
        a, b = await make_users(store, 2)
        tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
        pool = store._pool
        assert pool is not None
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: statements.append(str(record.query)))
        effects: Effects[MessageRecord] = Effects(
            idempotency=(f"send:{a}:{tid}", "k1"), result=lambda m: m.id, events=_payload,
            reveals=lambda m: m.created_ms,
        )
        content = "123456789012345678 and 2"  # digits in user text are never taken for the marks
        first = await store.send_message(tid, MessageDraft("text", sender_id=a, content=content), T0 + 5, effects)
        assert len(statements) == 1 and "threadline_send" in statements[0]
        again = await store.send_message(tid, MessageDraft("text", sender_id=a, content="x"), T0 + 6, effects)
        assert len(statements) == 2
    finally:
        await store.close()
    message = first.value
    assert message is not None and again.replayed == message.id and again.value is None
    assert (message.sequence_id, message.content) == (3, content)  # after the two system messages
    assert int(message.id) >= T0 + 5 and message.version == int(message.id)
    (event,) = first.events
    assert set(event.recipients) == {a, b} and event.message_ms == T0 + 5
    sent = json.loads(event.payload)
    assert sent == {"id": message.id, "version": message.id, "sequenceId": "3", "message": content}
    reader = PostgresStore(postgres_url)
    await reader.open()
    try:
        stored = await reader.events_since(b, 0, 10_000)
        listed = await reader.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    finally:
        await reader.close()
    assert [(e.position, e.payload) for e in stored][-1] == (event.position, event.payload)
    newest = listed[0]
    assert (newest.id, newest.sequence_id, newest.content, newest.version) == (message.id, 3, content, message.version)


async def test_a_send_to_no_thread_is_a_store_error_and_writes_nothing(engine: Engine) -> None:
    (a,) = await make_users(engine.first, 1)
    with pytest.raises(StoreError):
        await send(engine.first, "19:none@thread.v2", a, "hello", T0, key="k")
    count = engine.first.partitions
    assert await engine.first.event_bounds() == (list(range(count)), list(range(count)))
    # the key was not kept: a send to a real thread under the same scope name is not a replay
    tid = (await make_thread(engine.first, a)).value[0].thread_id  # type: ignore[index]
    done = await send(engine.first, tid, a, "hello", T0 + 1, key="k")
    assert done.replayed is None and done.value is not None


async def test_concurrent_duplicate_sends_write_once_on_every_engine(engine: Engine) -> None:
    one, two = engine.first, await engine.open()
    a, b = await make_users(one, 2)
    tid = (await make_thread(one, a, [b])).value[0].thread_id  # type: ignore[index]
    outcomes: list[Any] = await asyncio.gather(
        *(send(s, tid, a, "once", T0 + 1, key="same") for s in (one, two, one, two))
    )
    written = [o for o in outcomes if o.value is not None]
    assert len(written) == 1
    assert {o.replayed for o in outcomes if o.value is None} == {written[0].value.id}
    listed = await one.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [m.content for m in listed].count("once") == 1


async def test_a_write_never_waits_for_another_partitions_counter(postgres_url: str) -> None:
    """The old single counter made every write of the database queue on one row; now only a partition's do.

    A transaction holds one partition's counter row (as a slow writer would, until its commit): a send
    to a thread of another partition completes meanwhile, one to a thread of the held partition waits.
    """
    store = PostgresStore(postgres_url)
    await store.open()
    holder = await asyncpg.connect(postgres_url)
    try:
        (a,) = await make_users(store, 1)
        tids = [(await make_thread(store, a)).value[0].thread_id for _ in range(40)]  # type: ignore[index]
        by_part: dict[int, list[str]] = {}
        for tid in tids:
            by_part.setdefault(partition_of(tid, store.partitions), []).append(tid)
        held = next(p for p, ts in by_part.items() if ts)
        free = next(ts[0] for p, ts in by_part.items() if p != held)
        blocked_tid = by_part[held][0]
        await holder.execute("BEGIN")
        await holder.execute("UPDATE event_partitions SET value = value WHERE id = $1", held)
        other = await asyncio.wait_for(send(store, free, a, "goes through", T0 + 1), 10)
        assert other.value is not None and other.events[0].position % store.partitions != held
        waiting = asyncio.ensure_future(send(store, blocked_tid, a, "waits", T0 + 2))
        done, _ = await asyncio.wait({waiting}, timeout=0.5)
        assert not done  # it queues on the held partition's row, as it must (commit order)
        await holder.execute("COMMIT")
        waited = await asyncio.wait_for(waiting, 10)
        assert waited.value is not None and waited.events[0].position % store.partitions == held
    finally:
        await holder.close()
        await store.close()


async def test_a_send_checks_membership_inside_the_write(engine: Engine) -> None:
    """A non-member, a removed member (even replaying its key) and a deleted thread are refused by the write."""
    store = engine.first
    a, b, c = await make_users(store, 3)
    tid = (await make_thread(store, a, [b])).value[0].thread_id  # type: ignore[index]
    with pytest.raises(NotAllowed) as outsider:
        await send(store, tid, c, "not a member", T0 + 1)
    assert outsider.value.thread_missing is False
    kept = await send(store, tid, b, "while a member", T0 + 2, key="k")
    assert kept.value is not None
    removed = await store.remove_participant(
        tid, b, MessageDraft("participantRemoved", initiator_id=a), T0 + 3, Effects()
    )
    assert removed.value is not None
    with pytest.raises(NotAllowed) as replay:
        await send(store, tid, b, "while a member", T0 + 4, key="k")  # the same key: no replay for a leaver
    assert replay.value.thread_missing is False
    await store.delete_thread(tid, T0 + 5, Effects())
    with pytest.raises(NotAllowed) as gone:
        await send(store, tid, a, "after deletion", T0 + 6)
    assert gone.value.thread_missing is True
    listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=10)
    assert [m.content for m in listed if m.type == "text"] == ["while a member"]
