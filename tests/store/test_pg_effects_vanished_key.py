"""A key found taken by the general write path, gone before its result is read: a retry, one write.

Every keyed write but the batched send (here ``create_thread``) claims its key in ``_effects`` with
one ``INSERT ... ON CONFLICT DO NOTHING RETURNING true`` and, when the key was taken, reads the stored
result in its next statement. If the key is gone by then, the write raises ``SerializationError``
("idempotency key vanished") and the store's retry loop runs it again.

Which holders reach that branch (checked here against the server):

* A holder that rolls back, or deletes its own claim and commits, does NOT: the claim waits for the
  holder's transaction, then finds no committed row and takes the key itself, on the first attempt.
* Only a key that is committed when the claim checks it, and deleted (the pruner) before the read
  takes its snapshot, does. The claim is one row, so nothing on the server waits between the two
  statements: the window is the client's round trip. The test widens it for certain with a TCP hop
  between the store and PostgreSQL that holds the connection's next statement (the read) once the
  server has answered a claim with ``INSERT 0 0``; the pruner runs meanwhile on the pool's other
  connection, and then the read goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from threadline.store.postgres import PostgresStore

from ..pg import fresh_database, require_postgres, until_waiting_for_a_lock
from .helpers import T0, make_thread, make_users, thread_id

pytestmark = pytest.mark.anyio

_NEGOTIATIONS = (80877103, 80877104)  # SSLRequest, GSSENCRequest: the hop answers "N" (plain text)


class _Hop:
    """A TCP hop to PostgreSQL that can hold back the statement a connection sends after a taken claim.

    Armed, the first ``INSERT 0 0`` command tag the server sends (a claim that found its key taken)
    closes that connection's client-to-server direction before the client sees the reply; the client's
    next statement waits in the hop until :meth:`release`. Other connections pass freely.

    Args:
        host: the server's host.
        port: the server's port.
    """

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gate: asyncio.Event | None = None
        self.armed = False
        #: set once a claim's reply has closed a connection's gate.
        self.held = asyncio.Event()

    async def start(self) -> int:
        """Listen on a free local port; return it."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def release(self) -> None:
        """Let the held statement (and what follows) through."""
        assert self._gate is not None
        self._gate.set()

    async def close(self) -> None:
        """Stop listening and end every relayed connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        writers = [client_w]
        gate = asyncio.Event()
        gate.set()
        try:
            server_r, server_w = await asyncio.open_connection(*self._upstream)
            writers.append(server_w)
            await asyncio.gather(self._up(client_r, client_w, server_w, gate), self._down(server_r, client_w, gate))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # either side hung up: the other is closed below
        finally:
            for writer in writers:
                writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _up(
        client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, server_w: asyncio.StreamWriter,
        gate: asyncio.Event,
    ) -> None:
        while True:  # the startup message; encryption requests are refused here, so the server speaks plainly
            head = await client_r.readexactly(8)
            length, code = struct.unpack("!ii", head)
            if code not in _NEGOTIATIONS:
                server_w.write(head + await client_r.readexactly(length - 8))
                break
            client_w.write(b"N")
        while data := await client_r.read(65536):
            await gate.wait()
            server_w.write(data)
            await server_w.drain()
        server_w.close()

    async def _down(self, server_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, gate: asyncio.Event) -> None:
        while True:
            head = await server_r.readexactly(5)
            body = await server_r.readexactly(int.from_bytes(head[1:], "big") - 4)
            if self.armed and head[:1] == b"C" and body == b"INSERT 0 0\x00":
                self.armed = False
                gate.clear()  # before the client can answer the reply
                self._gate = gate
                self.held.set()
            client_w.write(head + body)
            await client_w.drain()


@contextlib.asynccontextmanager
async def _through_hop(url: str) -> AsyncIterator[tuple[_Hop, str]]:
    parts = urlsplit(url)
    hop = _Hop(parts.hostname or "127.0.0.1", parts.port or 5432)
    port = await hop.start()
    user = f"{parts.username}@" if parts.username else ""
    try:
        yield hop, parts._replace(netloc=f"{user}127.0.0.1:{port}").geturl()
    finally:
        await hop.close()




async def _statements(store: PostgresStore) -> list[Any]:
    """The pool's idempotency statements, as the query loggers see them (in order)."""
    seen: list[Any] = []
    pool = store._pool
    assert pool is not None
    async with pool.acquire() as one, pool.acquire() as two:  # both connections: the write takes either
        for conn in (one, two):
            conn.add_query_logger(lambda r: seen.append(r) if "FROM idempotency" in str(r.query)
                                  or "INTO idempotency" in str(r.query) else None)
    return seen


async def _landed(conn: asyncpg.Connection, tid: str, scope: str) -> tuple[Any, ...]:
    return (
        await conn.fetchval("SELECT count(*) FROM threads WHERE id = $1", tid),
        await conn.fetchval("SELECT count(*) FROM messages WHERE thread_id = $1", tid),
        await conn.fetchval("SELECT count(*) FROM events WHERE thread_id = $1 AND type = 'chatThreadCreated'", tid),
        [tuple(r) for r in await conn.fetch("SELECT key, result FROM idempotency WHERE scope = $1", scope)],
    )


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for r in caplog.records if r.name == "threadline.store" and (m := r.getMessage()).startswith("retrying")]


@pytest.mark.parametrize("held", [True, False], ids=["claim-waited-for-a-holder", "key-stored-long-ago"])
async def test_a_taken_key_pruned_before_its_result_is_read_is_retried_and_the_thread_created_once(
    held: bool, caplog: pytest.LogCaptureFixture
) -> None:
    require_postgres()
    caplog.set_level(logging.INFO, logger="threadline.store")
    with fresh_database("threadline_vanish") as url:  # a database of its own: the pruner deletes every key
        other = await asyncpg.connect(url)
        async with _through_hop(url) as (hop, hopped):
            store = PostgresStore(hopped, min_size=2, max_size=2)
            await store.open()
            try:
                (a,) = await make_users(store, 1)
                scope, tid = f"create:{a}", thread_id()
                seen = await _statements(store)
                if held:  # another node's create, between its claim and its commit
                    await other.execute("BEGIN")
                    await other.execute("INSERT INTO idempotency VALUES ($1, 'k', '', 0)", scope)
                else:
                    await other.execute("INSERT INTO idempotency VALUES ($1, 'k', 'theirs', 0)", scope)
                hop.armed = True
                create = asyncio.ensure_future(make_thread(store, a, tid=tid, idempotency=(scope, "k")))
                if held:
                    await until_waiting_for_a_lock(other, "the claim on the other node's key")
                    await other.execute("UPDATE idempotency SET result = 'theirs' WHERE scope = $1", scope)
                    await other.execute("COMMIT")
                await asyncio.wait_for(hop.held.wait(), 10)  # the claim found the key taken; its read is held
                assert await other.fetchval("SELECT result FROM idempotency WHERE scope = $1", scope) == "theirs"
                assert await store.prune_idempotency(T0 * 10) == 1  # on the pool's other connection
                hop.release()
                outcome = await asyncio.wait_for(create, 10)
                await asyncio.sleep(0)  # the query loggers are called soon after each statement
                landed = await _landed(other, tid, scope)
            finally:
                await store.close()
                await other.close()

    assert _retries(caplog) == ["retrying a write after SerializationError"]  # the vanished key, and only it
    kinds = [("claim" if "INSERT" in str(r.query) else "read" if "SELECT" in str(r.query) else "prune",
              r.exception) for r in seen]
    # the read ends after the prune, finding nothing (the store raises, not the server); the retry claims anew
    assert kinds == [("claim", None), ("prune", None), ("read", None), ("claim", None)]
    assert outcome.replayed is None and outcome.value is not None  # the pruned result is not replayed
    assert [(m.sequence_id, m.type) for m in outcome.value] == [(1, "participantAdded"), (2, "topicUpdated")]
    assert landed == (1, 2, 1, [("k", tid)])  # the thread, its two messages, one event, the key: once each


@pytest.mark.parametrize("ending", ["rollback", "delete-and-commit"])
async def test_a_holder_that_gives_its_key_up_hands_the_claim_over_without_a_retry(
    ending: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The holders the vanished-key branch might be blamed on never reach it: the claim just wins."""
    require_postgres()
    caplog.set_level(logging.INFO, logger="threadline.store")
    with fresh_database("threadline_vanish") as url:
        store = PostgresStore(url, min_size=2, max_size=2)
        await store.open()
        other = await asyncpg.connect(url)
        try:
            (a,) = await make_users(store, 1)
            scope, tid = f"create:{a}", thread_id()
            seen = await _statements(store)
            await other.execute("BEGIN")
            await other.execute("INSERT INTO idempotency VALUES ($1, 'k', '', 0)", scope)
            create = asyncio.ensure_future(make_thread(store, a, tid=tid, idempotency=(scope, "k")))
            await until_waiting_for_a_lock(other, "the claim on the other node's key")
            if ending == "delete-and-commit":  # as a write that produced nothing does with its claim
                await other.execute("DELETE FROM idempotency WHERE scope = $1", scope)
                await other.execute("COMMIT")
            else:
                await other.execute("ROLLBACK")
            outcome = await asyncio.wait_for(create, 10)
            await asyncio.sleep(0)
            landed = await _landed(other, tid, scope)
        finally:
            await other.close()
            await store.close()

    assert _retries(caplog) == []
    assert [("INSERT" in str(r.query), r.exception) for r in seen] == [(True, None)]  # one claim, no read
    assert outcome.replayed is None and outcome.value is not None
    assert [(m.sequence_id, m.type) for m in outcome.value] == [(1, "participantAdded"), (2, "topicUpdated")]
    assert landed == (1, 2, 1, [("k", tid)])
