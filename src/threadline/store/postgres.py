"""The scale-out store: PostgreSQL through an asyncpg pool, shared by many nodes.

It mirrors :class:`~threadline.store.sqlite.SqliteStore` statement for
statement; where SQLite gets its guarantees from having one writer, this
engine gets them from row locks held until commit:

* sequence ids and epoch-ms message ids come from ``UPDATE threads ...
  RETURNING``, so writers of one thread queue on its row;
* membership changes (add, remove) lock the thread row before reading who is
  in, so two nodes cannot add the same user twice, and the participant cap
  is counted under that lock, so concurrent adds cannot together pass it;
* an idempotent write first claims its ``(scope, key)`` with ``INSERT ... ON
  CONFLICT DO NOTHING``: a concurrent duplicate waits on the unique index until
  the first commits, then finds the key taken and replays the stored result;
* event positions come from the row of the thread's partition in
  ``event_partitions`` (:mod:`.positions`), whose row lock is held until
  commit, so a transaction that took a partition's position P commits before
  any that takes the next one: a partition's positions become visible in
  order, on every node. (A ``BIGSERIAL`` would not do: its values are handed
  out at insert time, and a lower one can commit after a higher one.)
  Writes to threads of other partitions never wait for it.

A send takes none of the path below: it is one statement (:mod:`.pg_send`).
Every other event writer of a partition queues on its lock, so what matters is
how long it is held. A write therefore does all its work first: it inserts its events under
placeholder positions (negative, unique per write, from the
``event_placeholders`` sequence) and its membership rows with their positions
still unset, and notes their ids. Its last message to the server is then one
simple-protocol query (only integers are inlined), ``WITH c AS (UPDATE
event_partitions ... RETURNING ...), ... UPDATE events SET position = ...,
UPDATE participants SET joined_pos/left_pos = ... SELECT set_config(...);
COMMIT``: planned before it waits, it takes the counter lock, rewrites the
placeholders and commits, with no client round trip in between. The lock is
held for those few row updates and the WAL flush, no longer. (Before, it was
held through two more round trips, the recipients query and ``COMMIT``, each
waiting on the client's event loop.)

Why this is still correct:

* ordering: positions are still taken under the counter lock and the lock is
  still released only by ``COMMIT``, so commit order is position order. The
  placeholders are never visible: they are written and replaced by the same
  transaction, and they are negative (readers ask for ``position > after``
  with ``after >= 0``); dense positions are kept too (an aborted write rolls
  its counter increment back), so the Redis hub's gap detection and the
  WebSocket resume read exactly what they read before;
* recipients: the members whose interval covers a position, read *after*
  commit (the first position is passed through a session setting). That read
  is exact: membership rows change their coverage only in the final step of a
  write, under the counter lock, and set ``joined_pos``/``left_pos`` to at
  least the counter value they found, so nothing that commits later can
  change who covers a position already committed; ``events_since`` reads the
  same rows, so live delivery and replay agree;
* a membership change with no event (``on_position`` in SQLite) still takes
  the counter lock, with ``value + 0``: a join begins at the next position, a
  removal ends at the last one taken;
* deleting a user ends its memberships at their partitions' current positions
  in its own final message: it locks every partition row (in id order), then
  ``UPDATE participants`` as a second statement, whose fresh snapshot, taken
  once the locks are held, sees every membership committed before, then ``COMMIT``.

If the connection fails between ``COMMIT`` and that read, the write is
returned without its events (and a warning is logged); subscribers still get
them from the log: the hub fills the gap, a resume replays it.

Lock order is idempotency key, thread row, event counter, membership rows; a
deadlock that still happens (deleting a user while re-adding them) is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from . import migrations, pg_send
from .admin_queries import PostgresAdminQueries
from .base import Effects, NotAllowed, Outcome, StoreError, StoreReadOnly, StoreUnavailable, TooManyParticipants
from .positions import partition_of
from .postgres_images import PostgresBlobs, PostgresImages
from .records import (
    Event,
    MessageDraft,
    MessageRecord,
    ParticipantRecord,
    ReadReceiptRecord,
    RetentionChange,
    ThreadRecord,
    ThreadUpdate,
    UserRecord,
)
from .rows import (
    MESSAGE_COLUMNS,
    PARTICIPANT_COLUMNS,
    T_THREAD_COLUMNS,
    THREAD_COLUMNS,
    access_from,
    drafted_message,
    dump_json,
    message_from,
    message_values,
    participant_from,
    receipt_from,
    thread_from,
    user_from,
)
from .webhooks import keep_bounds
from .webhooks_postgres import PostgresWebhooks

__all__ = ["PostgresStore", "migrate"]

log = logging.getLogger("threadline.store")

T = TypeVar("T")
Connection = Any  # asyncpg.Connection or a pool proxy; asyncpg ships no precise types
_LIVE_MEMBER = "left_pos IS NULL"
#: Key of the advisory lock that serialises migrations across nodes ("thrdline").
MIGRATION_LOCK = 0x7468_72646C696E65
_NOW_MS = "(extract(epoch from clock_timestamp()) * 1000)::bigint"
_RETRIES = 5
#: Placeholder positions of a write are -(slot * _SPAN + n) for its n-th event, n < _SPAN.
_SPAN = 65536
#: The session setting through which a write's final message hands its first position back.
_BASE_SETTING = "threadline.event_base"
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


@dataclass(slots=True)
class _Finish:
    """What an event-writing transaction leaves for its final message (see the module docstring).

    Attributes:
        thread_id: the thread of the events.
        events: the write's events, in order; their positions are set after commit.
        slot: the events carry placeholder positions ``-(slot * _SPAN + n)``, n = 1, 2, ...
        joined: ids of membership rows that begin at the write's first position (or the next one).
        left: ids of membership rows that end at the write's first position (or the last one taken).
        counter: whether the final message must take the counter (events or membership).
        then: statements the final message runs once the counter is taken, before ``COMMIT``.
    """

    thread_id: str = ""
    #: the thread's partition, and how many there are (:mod:`.positions`).
    part: int = 0
    partitions: int = 1
    events: list[Event] = field(default_factory=list)
    slot: int = 0
    joined: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    counter: bool = False
    then: str = ""

    def sql(self) -> str:
        """The final message: take the counter, rewrite the placeholders, commit.

        One statement (planned before it waits for the lock) and ``COMMIT``, sent
        together through the simple protocol. Everything inlined is an integer.
        """
        then = f"{self.then}; " if self.then else ""
        if not self.counter:
            return f"{then}COMMIT"
        n, part, count = len(self.events), int(self.part), int(self.partitions)
        parts = [
            f"c AS (UPDATE event_partitions SET value = value + {n} WHERE id = {part} "
            f"RETURNING (value - {n}) * {count} + {part} AS base)"
        ]
        if n:
            high = int(self.slot) * _SPAN
            parts.append(
                f"e AS (UPDATE events SET position = c.base + (-events.position - {high}) * {count} FROM c "
                f"WHERE events.position BETWEEN {-(high + n)} AND {-(high + 1)})"
            )
        if self.joined:
            ids = ", ".join(str(int(i)) for i in self.joined)
            parts.append(
                f"j AS (UPDATE participants SET joined_pos = c.base + {count} FROM c "
                f"WHERE participants.id IN ({ids}))"
            )
        if self.left:
            # With no event of its own, the stay ends at the last position taken: the member has
            # heard everything up to now and nothing after (as in SQLite). A user deletion may have
            # ended the stay meanwhile: the re-check of left_pos keeps that end.
            ids = ", ".join(str(int(i)) for i in self.left)
            parts.append(
                f"l AS (UPDATE participants SET left_pos = c.base + {count if n else 0} FROM c "
                f"WHERE participants.id IN ({ids}) AND participants.{_LIVE_MEMBER})"
            )
        return (f"WITH {', '.join(parts)} SELECT set_config('{_BASE_SETTING}', c.base::text, false) FROM c; "
                f"{then}COMMIT")


async def _keep_session(conn: Connection) -> None:
    """Reset nothing when a connection goes back to the pool (asyncpg still rolls back an open transaction).

    The default reset costs a round trip per use (``RESET ALL``, ``UNLISTEN *``, ...) for state
    this store never leaves behind: its only session setting is rewritten by every write that reads it.
    """


class PostgresStore(PostgresImages, PostgresAdminQueries):
    """The :class:`~threadline.store.base.Store` on a PostgreSQL database.

    Args:
        url: a ``postgresql://`` (or ``postgres://``) connection URL.
        min_size: connections the pool keeps open.
        max_size: most connections the pool opens.
        command_timeout: seconds after which a statement is abandoned.
    """

    engine = "postgres"

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
        #: event partitions (:mod:`.positions`): the rows of ``event_partitions``, read on open.
        self.partitions = 1
        #: image bytes, in the database (see :mod:`.blobs`).
        self.blobs = PostgresBlobs(self._write, self._read)

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, then apply pending migrations under an advisory lock.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        try:
            conn = await asyncpg.connect(self.url, timeout=self._command_timeout)
            try:
                await migrate(conn)
                self.partitions = int(await conn.fetchval("SELECT count(*) FROM event_partitions"))
            finally:
                await conn.close()
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._min_size, max_size=self._max_size,
                command_timeout=self._command_timeout, reset=_keep_session,
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL is not reachable: {exc}") from exc

    async def close(self) -> None:
        """Wait for the connections in use to be released, then close them all."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers, :class:`StoreReadOnly` unless it takes writes.

        A standby (in recovery) or ``default_transaction_read_only`` refuses writes.
        """
        row = await self._read(lambda c: c.fetchrow(
            "SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') AS ro"
        ))
        if row["standby"] or row["ro"] == "on":
            raise StoreReadOnly("PostgreSQL is read-only" + (" (a standby)" if row["standby"] else ""))

    async def resource_identity(self, resource_id: str, key_fingerprint: str) -> tuple[str, str]:
        async def run(c: Connection) -> tuple[str, str]:
            query = "SELECT resource_id, key_fingerprint FROM resource_identity"
            row = await c.fetchrow(query)
            if row is None:  # only the first opening writes; concurrent first openings agree on one row
                await c.execute(
                    f"INSERT INTO resource_identity (resource_id, key_fingerprint, created_ms) "
                    f"VALUES ($1, $2, {_NOW_MS}) ON CONFLICT (id) DO NOTHING",
                    resource_id, key_fingerprint,
                )
                row = await c.fetchrow(query)
            return str(row["resource_id"]), str(row["key_fingerprint"])

        return await self._write(run)

    @property
    def webhooks(self) -> PostgresWebhooks:
        """The webhook tables (subscriptions, cursors, leases, dead letters)."""
        return PostgresWebhooks(self)

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
                "SELECT result FROM idempotency WHERE scope = $1 AND key = $2", scope, key
            )
            if stored is None:  # pragma: no cover - the holder deleted its claim between our statements
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

    # -- users -------------------------------------------------------------------------------------

    async def create_user(self, user: UserRecord) -> None:
        """Insert an identity."""
        await self._write(
            lambda c: c.execute(
                "INSERT INTO users (id, created_ms, token_generation) VALUES ($1, $2, $3)",
                user.id, user.created_ms, user.token_generation,
            )
        )

    async def get_user(self, user_id: str) -> UserRecord | None:
        """Return the identity, deleted or not."""
        row = await self._read(lambda c: c.fetchrow("SELECT * FROM users WHERE id = $1", user_id))
        return None if row is None else user_from(row)

    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserRecord]:
        """Return the identities found among ``user_ids``, by id."""
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        rows = await self._read(lambda c: c.fetch("SELECT * FROM users WHERE id = ANY($1::text[])", ids))
        return {row["id"]: user_from(row) for row in rows}

    async def revoke_tokens(self, user_id: str) -> int | None:
        """Raise the user's token generation; return it, or None if no such live user."""
        value = await self._write(
            lambda c: c.fetchval(
                "UPDATE users SET token_generation = token_generation + 1 "
                "WHERE id = $1 AND deleted_ms IS NULL RETURNING token_generation",
                user_id,
            )
        )
        return None if value is None else int(value)

    async def delete_user(self, user_id: str, now_ms: int) -> bool:
        """Mark the user deleted and end its memberships at the current position."""

        async def run(c: Connection, finish: _Finish) -> bool:
            done = await c.fetchval(
                "UPDATE users SET deleted_ms = $1, token_generation = token_generation + 1 "
                "WHERE id = $2 AND deleted_ms IS NULL RETURNING true",
                now_ms, user_id,
            )
            if done:
                # The memberships are ended in the final message, once the counter is locked: the
                # statement's snapshot then holds every membership committed before, and no event
                # can take a position between the current one and our commit. The user id reaches
                # it through a transaction-local setting, so only integers are ever inlined.
                await c.execute("SELECT set_config('threadline.deleted_user', $1, true)", user_id)
                count = int(self.partitions)
                finish.then = (
                    "SELECT 1 FROM event_partitions ORDER BY id FOR UPDATE; "
                    f"UPDATE participants SET left_pos = (SELECT value * {count} + id FROM event_partitions "
                    f"WHERE id = threadline_part(participants.thread_id, {count})) "
                    f"WHERE user_id = current_setting('threadline.deleted_user') AND {_LIVE_MEMBER}"
                )
            return bool(done)

        return await self._write_events(run)

    # -- threads -------------------------------------------------------------------------------------

    async def create_thread(
        self,
        thread: ThreadRecord,
        participants: Sequence[ParticipantRecord],
        drafts: Sequence[MessageDraft],
        effects: Effects[list[MessageRecord]],
        *,
        max_members: int | None = None,
    ) -> Outcome[list[MessageRecord]]:
        """Create a thread with its members and first (system) messages.

        Raises:
            TooManyParticipants: more than ``max_members`` participants.
        """

        async def run(c: Connection, finish: _Finish) -> Outcome[list[MessageRecord]]:
            async def apply() -> list[MessageRecord]:
                if max_members is not None and len({p.user_id for p in participants}) > max_members:
                    raise TooManyParticipants(max_members)
                await c.execute(
                    "INSERT INTO threads (id, topic, created_ms, created_by, metadata, retention, expires_ms) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    thread.id, thread.topic, thread.created_ms, thread.created_by,
                    dump_json(thread.metadata), dump_json(thread.retention), thread.expires_ms,
                )
                return await self._insert_messages(c, thread.id, drafts, thread.created_ms)

            outcome = await self._effects(c, effects, apply)
            if outcome.value is not None:
                joined = await self._join(c, thread.id, participants)
                outcome.events = await self._publishable(
                    c, finish, thread.id, effects, outcome.value, thread.created_ms, joined=joined
                )
            return outcome

        return await self._write_events(run)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        """Return the thread, deleted or not."""
        row = await self._read(
            lambda c: c.fetchrow(f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1", thread_id)
        )
        return None if row is None else thread_from(row)

    async def get_access(
        self, thread_id: str, user_id: str
    ) -> tuple[ThreadRecord | None, ParticipantRecord | None]:
        """Return the thread and the user's live membership in it, in one read."""
        row = await self._read(
            lambda c: c.fetchrow(
                f"SELECT {T_THREAD_COLUMNS}, p.user_id, p.display_name, p.share_history_ms "
                "FROM threads t LEFT JOIN participants p "
                f"ON p.thread_id = t.id AND p.user_id = $1 AND p.{_LIVE_MEMBER} WHERE t.id = $2",
                user_id, thread_id,
            )
        )
        return (None, None) if row is None else access_from(row)

    async def list_threads(
        self, user_id: str, *, start_ms: int | None, limit: int, after: tuple[int, str] | None
    ) -> list[ThreadRecord]:
        """List the user's threads by (last activity desc, id desc), after the ``after`` cursor."""
        sql = (
            f"SELECT {T_THREAD_COLUMNS} FROM participants p JOIN threads t ON t.id = p.thread_id "
            f"WHERE p.user_id = $1 AND p.{_LIVE_MEMBER}"
        )
        args: list[Any] = [user_id]
        if start_ms is not None:
            args.append(start_ms)
            sql += f" AND t.last_message_ms >= ${len(args)}"
        if after is not None:
            args += [after[0], after[1]]
            a, b = len(args) - 1, len(args)
            sql += (
                f" AND (t.last_message_ms < ${a} OR (t.last_message_ms = ${a} "
                f'AND t.id COLLATE "C" < ${b}))'
            )
        args.append(limit)
        # COLLATE "C": order ids bytewise, as SQLite does, whatever the database's collation.
        sql += f' ORDER BY t.last_message_ms DESC NULLS LAST, t.id COLLATE "C" DESC LIMIT ${len(args)}'
        rows = await self._read(lambda c: c.fetch(sql, *args))
        return [thread_from(r) for r in rows]

    async def update_thread(
        self,
        thread_id: str,
        *,
        topic: str | None,
        metadata: dict[str, str] | None,
        draft: MessageDraft | None,
        now_ms: int,
        effects: Effects[ThreadUpdate],
        retention: RetentionChange | None = None,
    ) -> Outcome[ThreadUpdate]:
        """Set the given properties (None: unchanged); ``topicUpdated`` only when the topic changes."""

        async def run(c: Connection, finish: _Finish) -> Outcome[ThreadUpdate]:
            old = await c.fetchval(
                "SELECT topic FROM threads WHERE id = $1 AND deleted_ms IS NULL FOR UPDATE", thread_id
            )
            if old is None:
                return Outcome()
            keep = retention is None
            row = await c.fetchrow(
                "UPDATE threads SET topic = coalesce($1, topic), metadata = coalesce($2, metadata), "
                "retention = CASE WHEN $3 THEN retention ELSE $4 END, "
                f"expires_ms = CASE WHEN $3 THEN expires_ms ELSE $5 END WHERE id = $6 RETURNING {THREAD_COLUMNS}",
                topic, dump_json(metadata), keep, dump_json(retention.policy) if retention else None,
                retention.expires_ms if retention else None, thread_id,
            )
            changed = draft is not None and topic is not None and topic != old
            message = (await self._insert_messages(c, thread_id, [draft], now_ms))[0] if changed and draft else None
            outcome = Outcome(value=ThreadUpdate(thread_from(row), message))
            outcome.events = await self._publishable(c, finish, thread_id, effects, outcome.value, now_ms)
            return outcome

        return await self._write_events(run)

    async def delete_thread(
        self, thread_id: str, now_ms: int, effects: Effects[ThreadRecord], *, expired_by: int | None = None
    ) -> Outcome[ThreadRecord]:
        """Mark a live thread deleted (with ``expired_by``: only if expired by then); None if not."""

        async def run(c: Connection, finish: _Finish) -> Outcome[ThreadRecord]:
            row = await c.fetchrow(
                "UPDATE threads SET deleted_ms = $1 WHERE id = $2 AND deleted_ms IS NULL "
                f"AND ($3::bigint IS NULL OR expires_ms <= $3) RETURNING {THREAD_COLUMNS}",
                now_ms, thread_id, expired_by,
            )
            thread = None if row is None else thread_from(row)
            if thread is not None:
                await self._drop_images(c, thread_id)
            outcome = Outcome(value=thread)
            outcome.events = await self._publishable(c, finish, thread_id, effects, thread, now_ms)
            return outcome

        return await self._write_events(run)

    async def due_threads(self, now_ms: int, limit: int) -> list[str]:
        """Ids of live threads whose retention expiry is at or before ``now_ms``, oldest expiry first."""
        rows = await self._read(
            lambda c: c.fetch(
                "SELECT id FROM threads WHERE expires_ms <= $1 AND deleted_ms IS NULL "
                "ORDER BY expires_ms LIMIT $2",
                now_ms, limit,
            )
        )
        return [r["id"] for r in rows]

    # -- participants ----------------------------------------------------------------------------------

    async def list_participants(self, thread_id: str, *, skip: int, limit: int) -> list[ParticipantRecord]:
        """Live members in join order."""
        rows = await self._read(
            lambda c: c.fetch(
                f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE thread_id = $1 AND {_LIVE_MEMBER} "
                "ORDER BY id LIMIT $2 OFFSET $3",
                thread_id, limit, skip,
            )
        )
        return [participant_from(r) for r in rows]

    async def count_participants(self, thread_id: str) -> int:
        """How many live members the thread has."""
        value = await self._read(
            lambda c: c.fetchval(
                f"SELECT count(*) FROM participants WHERE thread_id = $1 AND {_LIVE_MEMBER}", thread_id
            )
        )
        return int(value)

    async def add_participants(
        self,
        thread_id: str,
        participants: Sequence[ParticipantRecord],
        draft: MessageDraft,
        now_ms: int,
        effects: Effects[MessageRecord | None],
        *,
        max_members: int | None = None,
    ) -> Outcome[MessageRecord | None]:
        """Add members; those already in are left exactly as they are and not announced.

        Raises:
            TooManyParticipants: the live members plus the new ones would pass ``max_members``.
        """

        async def run(c: Connection, finish: _Finish) -> Outcome[MessageRecord | None]:
            async def apply() -> MessageRecord | None:
                # Every membership change holds this lock, and each statement below reads what
                # committed before it was granted (READ COMMITTED): the count is exact.
                if not await self._lock_thread(c, thread_id):
                    return None
                live = {
                    r["user_id"]
                    for r in await c.fetch(
                        f"SELECT user_id FROM participants WHERE thread_id = $1 AND {_LIVE_MEMBER}", thread_id
                    )
                }
                # Members already in are left exactly as they are (share time, name, metadata).
                fresh = list({p.user_id: p for p in participants if p.user_id not in live}.values())
                if not fresh:
                    return None
                if max_members is not None and len(live) + len(fresh) > max_members:
                    raise TooManyParticipants(max_members)
                draft.participants = fresh
                return (await self._insert_messages(c, thread_id, [draft], now_ms))[0]

            outcome: Outcome[MessageRecord | None] = await self._effects(c, effects, apply)
            if outcome.value is not None:
                joined = await self._join(c, thread_id, outcome.value.participants or [])
                outcome.events = await self._publishable(
                    c, finish, thread_id, effects, outcome.value, now_ms, joined=joined
                )
            return outcome

        return await self._write_events(run)

    async def remove_participant(
        self, thread_id: str, user_id: str, draft: MessageDraft, now_ms: int,
        effects: Effects[MessageRecord | None],
    ) -> Outcome[MessageRecord | None]:
        """End a membership and write the ``participantRemoved`` draft; None if not a member."""

        async def run(c: Connection, finish: _Finish) -> Outcome[MessageRecord | None]:
            if not await self._lock_thread(c, thread_id):
                return Outcome()
            row = await c.fetchrow(
                f"SELECT id, {PARTICIPANT_COLUMNS} FROM participants WHERE thread_id = $1 AND user_id = $2 "
                f"AND {_LIVE_MEMBER}",
                thread_id, user_id,
            )
            if row is None:
                return Outcome()
            draft.participants = [participant_from(row)]
            message = (await self._insert_messages(c, thread_id, [draft], now_ms))[0]
            outcome: Outcome[MessageRecord | None] = Outcome(value=message)
            outcome.events = await self._publishable(
                c, finish, thread_id, effects, message, now_ms, left=[int(row["id"])]
            )
            return outcome

        return await self._write_events(run)

    # -- messages ------------------------------------------------------------------------------------------

    async def send_message(
        self, thread_id: str, draft: MessageDraft, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        """Append a message with the next sequence id and a fresh epoch-ms id.

        One statement and its commit (:mod:`.pg_send`), unless the message links images.

        Raises:
            NotAllowed: the thread is missing or deleted, or the sender is not a live member.
        """
        if pg_send.supports(draft, effects):
            return await self._retrying(
                lambda c: pg_send.send_in_one_statement(c, thread_id, draft, now_ms, effects, self.partitions)
            )

        async def run(c: Connection, finish: _Finish) -> Outcome[MessageRecord]:
            # as threadline_send: the thread row first, then the sender's membership under it
            row = await c.fetchrow(
                "SELECT t.deleted_ms IS NULL AS live, EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = t.id "
                f"AND p.user_id = $2 AND p.{_LIVE_MEMBER}) AS member FROM threads t WHERE t.id = $1 FOR UPDATE OF t",
                thread_id, draft.sender_id,
            )
            if row is None or not row["live"]:
                raise NotAllowed(thread_missing=True)
            if not row["member"]:
                raise NotAllowed(thread_missing=False)

            async def apply() -> MessageRecord:
                return (await self._insert_messages(c, thread_id, [draft], now_ms))[0]

            outcome = await self._effects(c, effects, apply)
            if outcome.value is not None:
                outcome.events = await self._publishable(c, finish, thread_id, effects, outcome.value, now_ms)
            return outcome

        return await self._write_events(run)

    async def get_message(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """Return the message, deleted or not."""
        async def run(c: Connection) -> MessageRecord | None:
            row = await c.fetchrow(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1 AND id = $2", thread_id, message_id
            )
            message = None if row is None else message_from(row)
            if message is not None:
                await self._fill_attachments(c, [message])
            return message

        return await self._read(run)

    async def list_messages(
        self, thread_id: str, *, before_seq: int | None, min_created_ms: int, limit: int
    ) -> list[MessageRecord]:
        """Messages newest first, with ``sequence_id < before_seq`` when given."""
        sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = $1 AND created_ms >= $2"
        args: list[Any] = [thread_id, min_created_ms]
        if before_seq is not None:
            args.append(before_seq)
            sql += f" AND seq < ${len(args)}"
        args.append(limit)
        sql += f" ORDER BY seq DESC LIMIT ${len(args)}"
        async def run(c: Connection) -> list[MessageRecord]:
            messages = [message_from(r) for r in await c.fetch(sql, *args)]
            await self._fill_attachments(c, messages)
            return messages

        return await self._read(run)

    async def update_message(
        self,
        thread_id: str,
        message_id: str,
        *,
        content: str | None,
        metadata: dict[str, str] | None,
        now_ms: int,
        effects: Effects[MessageRecord],
        attachments: Sequence[str] | None = None,
    ) -> Outcome[MessageRecord]:
        """Edit a live message (a None field is left as it is); None if not live.

        ``attachments`` replaces the message's images; those it drops are deleted.
        """

        async def relink(c: Connection, message: MessageRecord) -> None:
            if attachments is None:
                await self._fill_attachments(c, [message])
                return
            await self._drop_images(c, thread_id, message_id=message_id, keep=attachments)
            await self._link_images(c, message, attachments)

        return await self._write_events(
            lambda c, finish: self._change_message(
                c, finish, thread_id, message_id,
                "content = coalesce($1, content), metadata = coalesce($2, metadata), edited_ms = $3",
                (content, dump_json(metadata), now_ms), now_ms, effects, relink,
            )
        )

    async def delete_message(
        self, thread_id: str, message_id: str, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        """Mark a live message deleted; None if not live."""

        async def drop(c: Connection, message: MessageRecord) -> None:
            await self._drop_images(c, thread_id, message_id=message_id)

        return await self._write_events(
            lambda c, finish: self._change_message(
                c, finish, thread_id, message_id, "deleted_ms = $1", (now_ms,), now_ms, effects, drop
            )
        )

    async def _change_message(
        self, c: Connection, finish: _Finish, thread_id: str, message_id: str, assignments: str,
        values: tuple[Any, ...], now_ms: int, effects: Effects[MessageRecord],
        then: Callable[[Connection, MessageRecord], Awaitable[None]] | None = None,
    ) -> Outcome[MessageRecord]:
        """Change a live message (raising its version) and log the change's events; None if not live.

        ``assignments`` use the parameters ``$1`` to ``$n`` for the n ``values``; ``then`` runs on
        the changed message before its events are made (its images).
        """
        n = len(values)
        row = await c.fetchrow(
            f"UPDATE messages SET {assignments}, version = greatest(version + 1, ${n + 1}) "
            f"WHERE thread_id = ${n + 2} AND id = ${n + 3} AND deleted_ms IS NULL RETURNING {MESSAGE_COLUMNS}",
            *values, now_ms, thread_id, message_id,
        )
        message = None if row is None else message_from(row)
        if message is not None and then is not None:
            await then(c, message)
        outcome = Outcome(value=message)
        outcome.events = await self._publishable(c, finish, thread_id, effects, message, now_ms)
        return outcome

    # -- read receipts -------------------------------------------------------------------------------------

    async def send_read_receipt(
        self, receipt: ReadReceiptRecord, effects: Effects[ReadReceiptRecord]
    ) -> Outcome[ReadReceiptRecord]:
        """Keep the reader's latest receipt."""

        async def run(c: Connection, finish: _Finish) -> Outcome[ReadReceiptRecord]:
            async def apply() -> ReadReceiptRecord:
                await c.execute(
                    "INSERT INTO read_receipts (thread_id, user_id, message_id, read_ms) "
                    "VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (thread_id, user_id) DO UPDATE SET message_id = excluded.message_id, "
                    "read_ms = excluded.read_ms",
                    receipt.thread_id, receipt.user_id, receipt.message_id, receipt.read_ms,
                )
                return receipt

            outcome = await self._effects(c, effects, apply)
            if outcome.value is not None:
                outcome.events = await self._publishable(
                    c, finish, receipt.thread_id, effects, receipt, receipt.read_ms
                )
            return outcome

        return await self._write_events(run)

    async def list_read_receipts(
        self, thread_id: str, *, skip: int, limit: int, min_message_ms: int = 0
    ) -> list[ReadReceiptRecord]:
        """One receipt per reader, most recent first; with ``min_message_ms``, only those naming a newer message."""
        rows = await self._read(
            lambda c: c.fetch(
                "SELECT r.thread_id, r.user_id, r.message_id, r.read_ms FROM read_receipts r WHERE r.thread_id = $1 "
                "AND ($4::bigint <= 0 OR EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = r.thread_id "
                "AND m.id = r.message_id AND m.created_ms >= $4)) "
                'ORDER BY r.read_ms DESC, r.user_id COLLATE "C" LIMIT $2 OFFSET $3',
                thread_id, limit, skip, min_message_ms,
            )
        )
        return [receipt_from(r) for r in rows]

    # -- events ----------------------------------------------------------------------------------------------

    async def events_since(self, user_id: str, after: int | Sequence[int], limit: int) -> list[Event]:
        """Stored events after ``after`` (a cursor's, or one bound for every partition) the user received, in order."""
        count = int(self.partitions)
        bounds = [after] * count if isinstance(after, int) else list(after)
        if len(bounds) != count:
            raise StoreError(f"a cursor over {len(bounds)} partitions, not {count}")
        rows = await self._read(
            lambda c: c.fetch(
                "SELECT e.position, e.thread_id, e.type, e.payload, e.created_ms, e.message_ms FROM events e "
                f"WHERE e.position > $4 AND e.position > ($1::bigint[])[e.position % {count} + 1] "
                "AND EXISTS (SELECT 1 FROM participants p "
                "WHERE p.thread_id = e.thread_id "
                "AND p.user_id = $2 AND p.joined_pos <= e.position "
                "AND (p.left_pos IS NULL OR p.left_pos >= e.position) "
                "AND (e.message_ms IS NULL OR p.share_history_ms <= e.message_ms)) ORDER BY e.position LIMIT $3",
                bounds, user_id, limit, min(bounds),
            )
        )
        return [
            Event(int(r["position"]), r["thread_id"], r["type"], bytes(r["payload"]), int(r["created_ms"]),
                  (user_id,), None if r["message_ms"] is None else int(r["message_ms"]))
            for r in rows
        ]

    async def event_bounds(self) -> tuple[list[int], list[int]]:
        """Per partition: the highest pruned position (or the start), and the highest committed one."""
        count = int(self.partitions)
        rows = await self._read(
            lambda c: c.fetch(f"SELECT id, value * {count} + id AS head, pruned FROM event_partitions ORDER BY id")
        )
        return [int(r["pruned"]) for r in rows], [int(r["head"]) for r in rows]

    async def prune_events(self, before_ms: int) -> int:
        """Drop events created before ``before_ms`` that every webhook subscription has handled.

        Raises each partition's pruned mark; returns how many. The webhook rule is per
        partition: an event stays while it is above some subscription's cursor in its partition.
        """
        count = int(self.partitions)

        async def run(c: Connection) -> int:
            tokens = [str(r["cursor"]) for r in await c.fetch("SELECT cursor FROM webhook_subscriptions FOR SHARE")]
            keep = keep_bounds(tokens, count)
            value = await c.fetchval(
                "WITH d AS (DELETE FROM events WHERE created_ms < $1 "
                f"AND ($2::bigint[] IS NULL OR position <= ($2::bigint[])[position % {count} + 1]) "
                "RETURNING position), "
                f"m AS (SELECT position % {count} AS part, max(position) AS top FROM d WHERE position > 0 GROUP BY 1), "
                "u AS (UPDATE event_partitions SET pruned = greatest(pruned, m.top) FROM m WHERE id = m.part) "
                "SELECT count(*) FROM d",
                before_ms, keep,
            )
            return int(value)

        return await self._write(run)

    async def prune_idempotency(self, before_ms: int) -> int:
        """Forget repeatability ids recorded before ``before_ms``; return how many."""
        return await self._delete_before("idempotency", before_ms)

    async def _delete_before(self, table: str, before_ms: int) -> int:
        """Delete the rows of ``table`` (a constant name) created before ``before_ms``; return how many."""
        status = await self._write(lambda c: c.execute(f"DELETE FROM {table} WHERE created_ms < $1", before_ms))
        return int(str(status).rsplit(" ", 1)[-1])


async def migrate(conn: Connection) -> list[int]:
    """Apply the pending migrations; return the versions applied.

    A session-level advisory lock makes nodes that start together take turns:
    the first applies the migrations, the others then find nothing to do.

    Args:
        conn: an open asyncpg connection (not in a transaction).

    Returns:
        The versions applied by this call, oldest first.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_ms BIGINT NOT NULL)"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for migration in migrations.load("postgres"):
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)  # simple protocol: many statements at once
                await conn.execute(
                    f"INSERT INTO schema_migrations (version, name, applied_ms) VALUES ($1, $2, {_NOW_MS})",
                    migration.version, migration.name,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
            applied.append(migration.version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
