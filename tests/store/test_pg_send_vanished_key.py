"""A batch's stored key deleted between its claim and its read: SQLSTATE 40001, and the store retries.

``threadline_send_batch`` (migration 0045) claims every key of a batch in one ``INSERT ... ON
CONFLICT DO NOTHING`` (in scope, key order) and reads the stored results of the keys it found taken in
its next statement. A key found stored that is gone by then ("key vanished": the pruner deleted it
in between) aborts the statement with 40001 before anything is written, and the store runs it again.

The window is reached for certain, with no timing luck: the claim finds ``k1`` stored (nothing is
locked for that: ``DO NOTHING`` takes no row lock), then waits for ``k2``, which another node's open
transaction has claimed. While it waits the store's own pruner deletes ``k1`` and commits; then the
other node commits or rolls back, and the claim statement ends with ``k1`` to replay and no ``k1`` left.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from threadline.store.base import Effects
from threadline.store.postgres import PostgresStore
from threadline.store.records import MessageDraft, MessageRecord

from ..pg import fresh_database, require_postgres, until_waiting_for_a_lock
from .helpers import T0, make_thread, make_users

pytestmark = pytest.mark.anyio


def _keyed(scope: str, key: str) -> Effects[MessageRecord]:
    return Effects(
        idempotency=(scope, key), result=lambda m: m.id,
        events=lambda m: [("chatMessageReceived", json.dumps({"id": m.id}).encode())],
    )




@pytest.mark.parametrize("other_commits", [True, False])
async def test_a_stored_key_pruned_while_the_batch_waits_is_retried_and_each_send_lands_once(
    other_commits: bool,
) -> None:
    require_postgres()
    with fresh_database("threadline_vanish") as url:  # a database of its own: the pruner deletes every key
        store = PostgresStore(url, min_size=2, max_size=2)
        await store.open()
        other = await asyncpg.connect(url)
        batches: list[Any] = []  # the batch statements run, with their exception if any
        try:
            (a,) = await make_users(store, 1)
            tid = (await make_thread(store, a)).value[0].thread_id  # type: ignore[index]
            scope = f"send:{a}:{tid}"
            first = await store.send_message(
                tid, MessageDraft("text", sender_id=a, content="first"), T0 + 1, _keyed(scope, "k1")
            )
            assert first.value is not None
            pool = store._pool
            assert pool is not None
            async with pool.acquire() as one, pool.acquire() as two:  # both connections: the batch takes either
                for conn in (one, two):
                    conn.add_query_logger(
                        lambda r: batches.append(r) if "threadline_send_batch" in str(r.query) else None
                    )

            await other.execute("BEGIN")  # another node's send, between its claim of k2 and its commit
            await other.execute("INSERT INTO idempotency VALUES ($1, 'k2', '', 0)", scope)
            sends = asyncio.gather(*(
                store.send_message(tid, MessageDraft("text", sender_id=a, content=text), T0 + 2, _keyed(scope, key))
                for text, key in (("again", "k1"), ("second", "k2"))
            ))
            # k1 is found stored; the claim now waits for k2
            await until_waiting_for_a_lock(other, "the batch's claim on the other node's key")
            assert await store.prune_idempotency(T0 * 10) == 1  # k1 (the other node's k2 is not committed)
            if other_commits:
                await other.execute("UPDATE idempotency SET result = 'theirs' WHERE scope = $1", scope)
                await other.execute("COMMIT")
            else:
                await other.execute("ROLLBACK")
            again, second = await asyncio.wait_for(sends, 10)
            await asyncio.sleep(0)  # the query loggers are called soon after each statement
            listed = await store.list_messages(tid, before_seq=None, min_created_ms=0, limit=20)
            keys = await other.fetch("SELECT key, result FROM idempotency WHERE scope = $1 ORDER BY key", scope)
        finally:
            await other.close()
            await store.close()

    assert len(batches) == 2  # the batch, then the store's retry
    vanished = batches[0].exception
    assert isinstance(vanished, asyncpg.exceptions.SerializationError)
    assert vanished.sqlstate == "40001" and "idempotency key vanished" in str(vanished)
    assert batches[1].exception is None
    assert (store.send_turn.statements, store.send_turn.sends) == (2, 3)  # the lone first send, then the batch

    assert again.value is not None and again.replayed is None  # k1 was pruned: the send is written anew
    texts = [(m.sequence_id, m.content) for m in reversed(listed) if m.type == "text"]
    if other_commits:  # k2 replays the other node's result; only "again" is written by this batch
        assert second.value is None and second.replayed == "theirs"
        assert texts == [(3, "first"), (4, "again")]
        assert [tuple(k) for k in keys] == [("k1", again.value.id), ("k2", "theirs")]
    else:  # the other node's claim rolled back: k2 is this batch's, written once
        assert second.value is not None and second.replayed is None
        assert texts == [(3, "first"), (4, "again"), (5, "second")]
        assert [tuple(k) for k in keys] == [("k1", again.value.id), ("k2", second.value.id)]
    assert len({m.id for m in listed}) == len(listed)  # no message twice
