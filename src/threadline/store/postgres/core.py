"""The pool and the transaction plumbing every write of the PostgreSQL store shares."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from .. import dialect
from ..base import Effects, Outcome, StoreError, StoreReadOnly, StoreUnavailable
from ..pg_send import SendTurn
from ..positions import partition_of
from ..postgres_images import PostgresBlobs, PostgresImages
from ..records import Event, MessageDraft, MessageRecord, ParticipantRecord
from ..rows import MESSAGE_COLUMNS, drafted_message, dump_json, message_values
from .finish import _BASE_SETTING, _SPAN, _Finish

__all__ = ["PostgresCore"]

log = logging.getLogger("threadline.store")

T = TypeVar("T")
Connection = Any  # asyncpg.Connection or a pool proxy; asyncpg ships no precise types
_NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"
_RETRIES = 5
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


class PostgresCore(PostgresImages):
    """The state of a :class:`~threadline.store.postgres.PostgresStore` and the helpers its writes share.

    Args:
        url: a ``postgresql://`` (or ``postgres://``) connection URL.
        min_size: connections the pool keeps open.
        max_size: most connections the pool opens.
        command_timeout: seconds after which a statement is abandoned.
    """

    def __init__(
        self, url: str, *, min_size: int = 2, max_size: int = 10, command_timeout: float = 30.0
    ) -> None:
        if not url.startswith(("postgres://", "postgresql://")):
            raise ValueError("a PostgreSQL URL starts with postgresql:// or postgres://")
        self.url = url
        self._min_size = min_size
        self._max_size = max_size
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        #: event partitions (:mod:`threadline.store.positions`): the rows of ``event_partitions``, read on open.
        self.partitions = 1
        #: the sends of one turn of the event loop, written together per thread (:mod:`..pg_send`).
        self.send_turn = SendTurn(self._retrying, lambda: self.partitions)
        #: image bytes, in the database (see :mod:`threadline.store.blobs`).
        self.blobs = PostgresBlobs(self._write, self._read)

    # -- plumbing ----------------------------------------------------------------------------------

    def _require_pool(self) -> asyncpg.Pool:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is closed")
        return pool

    async def _read(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        pool = self._require_pool()
        try:
            async with pool.acquire() as conn:
                return await fn(conn)
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL is not reachable: {exc}") from exc

    async def _retrying(self, once: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``once`` on a pooled connection; run it again when PostgreSQL broke a deadlock."""
        pool = self._require_pool()
        for attempt in range(_RETRIES):
            try:
                async with pool.acquire() as conn:
                    return await once(conn)
            except asyncpg.exceptions.TransactionRollbackError as exc:
                if attempt == _RETRIES - 1:
                    raise StoreError(f"the write kept conflicting: {exc}") from exc
                log.info("retrying a write after %s", type(exc).__name__)
                await asyncio.sleep(0.005 * (attempt + 1))
            except _UNAVAILABLE as exc:
                raise StoreUnavailable(f"PostgreSQL is not reachable: {exc}") from exc
            except asyncpg.exceptions.ReadOnlySQLTransactionError as exc:
                raise StoreReadOnly(f"PostgreSQL refused the write: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction; retry it when PostgreSQL broke a deadlock."""

        async def once(conn: Connection) -> T:
            async with conn.transaction():
                return await fn(conn)

        return await self._retrying(once)

    async def _write_events(self, fn: Callable[[Connection, _Finish], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction ended by the final message of its :class:`_Finish`.

        ``fn`` does every write; the final message then takes the event counter,
        assigns positions and commits in one round trip. The positions and
        recipients are read once committed. A deadlock is retried, as in :meth:`_write`.
        """

        async def once(conn: Connection) -> T:
            finish = _Finish(partitions=self.partitions)
            await conn.execute("BEGIN")
            try:
                result = await fn(conn, finish)
                await conn.execute(finish.sql())
            except BaseException:
                with contextlib.suppress(Exception):
                    if conn.is_in_transaction():
                        await conn.execute("ROLLBACK")
                raise
            if finish.events:
                await self._settle(conn, finish)
            return result

        return await self._retrying(once)

    @staticmethod
    async def _settle(conn: Connection, finish: _Finish) -> None:
        """After commit: give the events their positions and recipients, in one read.

        The recipients of a position are the members whose interval covers it;
        committed intervals never change their coverage of a committed position.
        """
        events = finish.events
        try:
            rows = await conn.fetch(
                f"SELECT b.base, p.user_id, p.joined_pos, p.left_pos, p.share_history_ms "
                f"FROM (SELECT current_setting('{_BASE_SETTING}')::bigint AS base) b "
                "LEFT JOIN participants p ON p.thread_id = $1 AND p.joined_pos <= b.base + $2 "
                "AND (p.left_pos IS NULL OR p.left_pos > b.base) ORDER BY p.id",
                finish.thread_id, len(events) * finish.partitions,
            )
        except (*_UNAVAILABLE, asyncpg.PostgresError) as exc:
            log.warning("a write committed but its events could not be read back (%s); "
                        "subscribers will get them from the log", exc)
            events.clear()
            return
        base = int(rows[0]["base"])
        members = [r for r in rows if r["user_id"] is not None]
        for n, event in enumerate(events, 1):
            p = event.position = base + n * finish.partitions
            shown = event.message_ms  # an event revealing a message reaches only those whose window holds it
            event.recipients = tuple(
                r["user_id"] for r in members
                if r["joined_pos"] <= p and (r["left_pos"] is None or r["left_pos"] >= p)
                and (shown is None or r["share_history_ms"] <= shown)
            )

    async def _effects(
        self, conn: Connection, effects: Effects[T], apply: Callable[[], Awaitable[T | None]]
    ) -> Outcome[T]:
        """Run one write with its idempotency, inside the open transaction.

        The key is claimed before anything else is written: a concurrent
        transaction holding the same key makes this one wait, and when that one
        commits the key is taken and its stored result is replayed.
        """
        if effects.idempotency is None:
            return Outcome(value=await apply())
        scope, key = effects.idempotency
        claimed = await conn.fetchval(
            f"INSERT INTO idempotency (scope, key, result, created_ms) VALUES ($1, $2, '', {_NOW_MS}) "
            "ON CONFLICT (scope, key) DO NOTHING RETURNING true",
            scope, key,
        )
        if not claimed:
            stored = await conn.fetchval(
                dialect.IDEMPOTENT_RESULT.postgres, scope, key
            )
            if stored is None:  # the key was deleted (pruned) between our claim and this read
                raise asyncpg.exceptions.SerializationError("idempotency key vanished; retry")
            return Outcome(replayed=stored)
        value = await apply()
        if effects.result is not None and value is not None:
            await conn.execute(
                "UPDATE idempotency SET result = $3 WHERE scope = $1 AND key = $2",
                scope, key, effects.result(value),
            )
        else:  # as in SQLite, a write that produced nothing leaves no key behind
            await conn.execute("DELETE FROM idempotency WHERE scope = $1 AND key = $2", scope, key)
        return Outcome(value=value)

    @staticmethod
    async def _lock_thread(conn: Connection, thread_id: str) -> bool:
        """Take the thread's row lock; False when there is no such thread."""
        return bool(await conn.fetchval("SELECT true FROM threads WHERE id = $1 FOR UPDATE", thread_id))

    @staticmethod
    async def _log_events(
        conn: Connection, finish: _Finish, thread_id: str, items: list[tuple[str, bytes]], now_ms: int,
        message_ms: int | None,
    ) -> None:
        """Store the events under placeholder positions; the final message gives them theirs."""
        if len(items) >= _SPAN:
            raise StoreError(f"a write may make at most {_SPAN - 1} events, not {len(items)}")
        slot = await conn.fetchval(
            f"WITH s AS (SELECT nextval('event_placeholders') AS slot) "
            "INSERT INTO events (position, thread_id, type, payload, created_ms, message_ms) "
            f"SELECT -(s.slot * {_SPAN} + i.n), $1, i.type, i.payload, $4, $5 FROM s, "
            "unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS i(type, payload, n) "
            f"RETURNING -position / {_SPAN}",
            thread_id, [k for k, _ in items], [p for _, p in items], now_ms, message_ms,
        )
        finish.slot = int(slot)
        finish.events = [Event(0, thread_id, kind, payload, now_ms, message_ms=message_ms) for kind, payload in items]

    async def _publishable(
        self, conn: Connection, finish: _Finish, thread_id: str, effects: Effects[Any], value: Any, now_ms: int,
        *, joined: Sequence[int] = (), left: Sequence[int] = (),
    ) -> list[Event]:
        """Store the events of a write and leave its position-taking to the final message.

        ``joined`` and ``left`` are ids of membership rows that begin or end at
        the write's first position; with no event, a join begins at the next
        position and a removal ends at the last one taken, as ``on_position``
        does in SQLite. The events returned get their positions and recipients
        once the transaction has committed.
        """
        items = effects.events(value) if effects.events is not None and value is not None else []
        finish.thread_id = thread_id
        finish.part = partition_of(thread_id, finish.partitions)
        if items:
            reveals = effects.reveals(value) if effects.reveals is not None else None
            await self._log_events(conn, finish, thread_id, items, now_ms, reveals)
        finish.joined += joined
        finish.left += left
        finish.counter = finish.counter or bool(items or joined or left)
        return finish.events

    @staticmethod
    async def _next_ids(conn: Connection, thread_id: str, count: int, now_ms: int) -> list[tuple[int, int]]:
        """Allocate (sequence id, epoch-ms message id) pairs under the thread's row lock.

        Each id is ``max(now, previous + 1)``, as in SQLite; for ``count`` ids
        the last is ``greatest(now + count - 1, last + count)``.
        """
        row = await conn.fetchrow(
            "UPDATE threads SET last_seq = last_seq + $2, "
            "last_message_id = greatest($3::bigint + $2 - 1, last_message_id + $2), last_message_ms = $3 "
            "WHERE id = $1 RETURNING last_seq, last_message_id",
            thread_id, count, now_ms,
        )
        if row is None:
            raise StoreError(f"no thread {thread_id!r}")
        seq, last_id = int(row["last_seq"]), int(row["last_message_id"])
        return [(seq - count + k, last_id - count + k) for k in range(1, count + 1)]

    async def _insert_messages(
        self, conn: Connection, thread_id: str, drafts: Sequence[MessageDraft], now_ms: int
    ) -> list[MessageRecord]:
        pairs = await self._next_ids(conn, thread_id, len(drafts), now_ms)
        records = [drafted_message(thread_id, seq, mid, d, now_ms) for (seq, mid), d in zip(pairs, drafts, strict=True)]
        await conn.executemany(
            f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            [message_values(r) for r in records],
        )
        for record, draft in zip(records, drafts, strict=True):
            if draft.attachments:
                await self._link_images(conn, record, draft.attachments)
        return records

    @staticmethod
    async def _join(conn: Connection, thread_id: str, members: Sequence[ParticipantRecord]) -> list[int]:
        """Insert memberships whose ``joined_pos`` the final message sets; return their ids, in order."""
        if not members:
            return []
        rows = await conn.fetch(
            "INSERT INTO participants (thread_id, user_id, display_name, share_history_ms, metadata, joined_pos) "
            "SELECT $1, m.user_id, m.display_name, m.share_history_ms, m.metadata, 0 "
            "FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY "
            "AS m(user_id, display_name, share_history_ms, metadata, n) ORDER BY m.n RETURNING id",
            thread_id, [p.user_id for p in members], [p.display_name for p in members],
            [p.share_history_ms for p in members], [dump_json(p.metadata) for p in members],
        )
        return sorted(int(r["id"]) for r in rows)
