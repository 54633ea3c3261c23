"""SQL the two engines share, written once: a small dialect layer.

Statements that are the same on SQLite and PostgreSQL except for their
placeholders are written here once, with SQLite's ``?``; :class:`Shared` holds
both forms, PostgreSQL's numbered ``$1, $2, ...`` in the order the ``?`` appear,
so both engines pass their arguments in the same order. Three more pieces cover
the few differences that recur:

* :class:`Engine` names an engine's spelling of bytewise text order and of
  substring search, for statements built at run time (:func:`thread_page`, the
  admin pages in ``store/admin_queries.py``);
* :class:`LogRead` reads the event log after a resume cursor: one partition on
  SQLite, each of PostgreSQL's partitions through its index;
* a lock clause (``FOR UPDATE``) is appended to the PostgreSQL form only, where
  SQLite's single writer makes it needless.

Statements that differ in more (``greatest`` vs ``max``, arrays, how events take
their positions) stay with their engine, in ``store/sqlite/`` and ``store/postgres/``.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any

from .rows import MESSAGE_COLUMNS, PARTICIPANT_COLUMNS, T_THREAD_COLUMNS, THREAD_COLUMNS

__all__ = [
    "ACTIVITY_WIDTH_MS", "LIVE_MEMBER", "POSTGRES", "SQLITE", "Engine", "LogRead", "Shared", "numbered", "thread_page",
]

#: The condition a membership row meets while the member is in the thread.
LIVE_MEMBER = "left_pos IS NULL"
#: ``threads.activity_minute`` is the thread's latest activity divided by this (migration 0048): the
#: admin pages' index is on it, so a send moves that index at most once this often per thread.
ACTIVITY_WIDTH_MS = 60_000


def numbered(sql: str, start: int = 1) -> str:
    """Rewrite the ``?`` placeholders of ``sql`` as PostgreSQL's ``$1, $2, ...``, in order.

    Args:
        sql: a statement whose only ``?`` are placeholders (none inside literals).
        start: the number of the first placeholder.

    Returns:
        The statement with numbered placeholders.
    """
    counter = itertools.count(start)
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


@dataclass(frozen=True, slots=True)
class Shared:
    """One statement in both engines' forms.

    Attributes:
        sqlite: the statement with ``?`` placeholders.
        postgres: the same statement with ``$n`` placeholders.
    """

    sqlite: str
    postgres: str

    @classmethod
    def of(cls, sql: str, *, lock: str = "") -> Shared:
        """The statement ``sql`` (written with ``?``) in both forms.

        Args:
            sql: the statement.
            lock: a locking clause (`` FOR UPDATE``) for PostgreSQL's form only: SQLite's
                one writer serialises every write transaction without it.

        Returns:
            Both forms.
        """
        return cls(sql, numbered(sql) + lock)


@dataclass(frozen=True, slots=True)
class Engine:
    """What differs between the engines' SQL beyond placeholders, for statements built at run time.

    Attributes:
        name: ``sqlite`` or ``postgres``.
        bytewise: written after a text column to compare and order it bytewise: nothing on
            SQLite (its default), ``COLLATE "C"`` on PostgreSQL, whatever the database's collation.
        find: the function giving the 1-based place of a substring in a text, 0 when absent
            (``instr``, ``strpos``): a search where ``%`` and ``_`` mean themselves.
    """

    name: str
    bytewise: str
    find: str

    def render(self, sql: str) -> str:
        """The statement ``sql`` (written with ``?``) in this engine's placeholders."""
        return numbered(sql) if self.name == "postgres" else sql

    def newest_first(
        self, sql: str, args: list[Any], *, key: str, ident: str, after: tuple[int, str] | None, limit: int,
        nulls: str = "", coarse: tuple[str, int] | None = None,
    ) -> tuple[str, list[Any]]:
        """End a keyset-paged read: rows after ``after`` by (``key`` desc, ``ident`` desc, bytewise), rendered.

        Args:
            sql: the statement so far, ending in a ``WHERE`` clause, written with ``?``.
            args: its arguments (extended in place).
            key: the integer sort expression.
            ident: the text column that breaks ties.
            after: the (key, ident) of the previous page's last row (None: the first page).
            limit: most rows.
            nulls: written after ``key DESC`` (`` NULLS LAST``: rows whose key is NULL last, as
                SQLite orders them anyway; only where no index serves the order).
            coarse: (column, width): an indexed column equal to ``key`` divided by ``width``
                (integer division, ``key`` never negative). The rows are ordered by it first, which
                is the same order (it follows ``key``) but one its index serves, the rest sorted
                within each of its values; ``after`` bounds it too.

        Returns:
            The statement in this engine's placeholders, and its arguments.
        """
        first = ""
        if coarse is not None:
            column, width = coarse
            first = f"{column} DESC, "
            if after is not None:
                sql += f" AND {column} <= CAST(? AS BIGINT) / {width:d}"
                args.append(after[0])
        if after is not None:
            sql += f" AND ({key} < ? OR ({key} = ? AND {ident}{self.bytewise} < ?))"
            args += [after[0], after[0], after[1]]
        sql += f" ORDER BY {first}{key} DESC{nulls}, {ident}{self.bytewise} DESC LIMIT ?"
        args.append(limit)
        return self.render(sql), args


SQLITE = Engine("sqlite", "", "instr")
POSTGRES = Engine("postgres", ' COLLATE "C"', "strpos")


def thread_page(
    engine: Engine, user_id: str, *, start_ms: int | None, limit: int, after: tuple[int, str] | None
) -> tuple[str, list[Any]]:
    """The statement listing a user's live threads by (last activity desc, id desc), and its arguments.

    The activity is :data:`VISIBLE_ACTIVITY` (what the member may know of it); ids order
    bytewise on both engines.

    Args:
        engine: the engine to render for.
        user_id: whose threads.
        start_ms: only threads active at or after it (None: all).
        limit: most rows.
        after: the (activity ms, id) of the previous page's last row (None: the first page).

    Returns:
        The statement and its arguments.
    """
    sql = (
        f"SELECT {LISTED_THREAD_COLUMNS} FROM participants p JOIN threads t ON t.id = p.thread_id "
        f"WHERE p.user_id = ? AND p.{LIVE_MEMBER}"
    )
    args: list[Any] = [user_id]
    if start_ms is not None:
        sql += f" AND {VISIBLE_ACTIVITY} >= ?"
        args.append(start_ms)
    return engine.newest_first(sql, args, key=VISIBLE_ACTIVITY, ident="t.id", after=after, limit=limit)


@dataclass(frozen=True, slots=True)
class LogRead:
    """A read of the event log after a resume cursor, written once for both engines.

    ``template`` reads the events ``e`` of one partition after a bound, in position
    order: it has ``{after}`` where the bound's condition goes, ``?`` for its other
    arguments, and ends with ``ORDER BY e.position LIMIT ?``. Both engines take the
    arguments in the same order: the cursor first, then the template's own.

    * SQLite has one partition: ``{after}`` is ``e.position > ?`` and the cursor is its
      one position.
    * PostgreSQL: the cursor is one bound per partition. The template runs once per
      partition (``LATERAL`` over the bounds), each run a range of the index
      ``events_partition`` on ``(position % partitions, position)`` (migration 0042) from
      its own bound, and the runs are merged by position under the same limit, which
      gives exactly the rows of one ordered scan of every partition after its bound.

    Attributes:
        template: the one-partition statement (see above).
    """

    template: str

    @property
    def sqlite(self) -> str:
        """The statement for SQLite (one partition): arguments ``after``, then the template's."""
        return self.template.format(after="e.position > ?")

    def postgres(self, partitions: int) -> str:
        """The statement for PostgreSQL over ``partitions`` partitions: arguments ``bounds``, then the template's.

        Args:
            partitions: the store's partition count; written into the statement as a
                literal, as the index expression has it.

        Returns:
            The statement with numbered placeholders.
        """
        return _per_partition(self.template, int(partitions))


@functools.cache
def _per_partition(template: str, partitions: int) -> str:
    inner = numbered(template.format(after=f"e.position % {partitions} = b.k - 1 AND e.position > b.after"), 2)
    limit = inner.count("$") + 1  # the template's last placeholder is its LIMIT
    return (
        "SELECT x.* FROM unnest($1::bigint[]) WITH ORDINALITY AS b(after, k) "
        f"CROSS JOIN LATERAL ({inner}) x ORDER BY x.position LIMIT ${limit}"
    )


# -- the event log -------------------------------------------------------------------------------
#: Whether the user (one argument) received event ``e``: a stay of theirs in its thread covers its
#: position, and their share-history window covers the message it reveals (if any).
RECEIVED_BY = (
    "EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = e.thread_id "
    "AND p.user_id = ? AND p.joined_pos <= e.position "
    "AND (p.left_pos IS NULL OR p.left_pos >= e.position) "
    "AND (e.message_ms IS NULL OR p.share_history_ms <= e.message_ms))"
)
#: The stored events after a cursor the user received; arguments: cursor, user id, limit.
EVENTS_SINCE = LogRead(
    "SELECT e.position, e.thread_id, e.type, e.payload, e.created_ms, e.message_ms FROM events e "
    f"WHERE {{after}} AND {RECEIVED_BY} ORDER BY e.position LIMIT ?"
)
#: Every stored event after a cursor (a webhook subscription's); arguments: cursor, limit.
EVENTS_AFTER = LogRead(
    "SELECT e.position, e.thread_id, e.type, e.payload, e.created_ms FROM events e "
    "WHERE {after} ORDER BY e.position LIMIT ?"
)

# -- identities ----------------------------------------------------------------------------------
CREATE_USER = Shared.of("INSERT INTO users (id, created_ms, token_generation) VALUES (?, ?, ?)")
GET_USER = Shared.of("SELECT * FROM users WHERE id = ?")
REVOKE_TOKENS = Shared.of(
    "UPDATE users SET token_generation = token_generation + 1 "
    "WHERE id = ? AND deleted_ms IS NULL RETURNING token_generation"
)

# -- threads -------------------------------------------------------------------------------------
CREATE_THREAD = Shared.of(
    "INSERT INTO threads (id, topic, created_ms, created_by, metadata, retention, expires_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
GET_THREAD = Shared.of(f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = ?")
#: The thread and the user's live membership in it; arguments: user id, thread id.
GET_ACCESS = Shared.of(
    f"SELECT {T_THREAD_COLUMNS}, p.user_id, p.display_name, p.share_history_ms "
    "FROM threads t LEFT JOIN participants p "
    f"ON p.thread_id = t.id AND p.user_id = ? AND p.{LIVE_MEMBER} WHERE t.id = ?"
)
#: The metadata of a live message, read under the write's lock: its row lock on PostgreSQL.
LOCK_MESSAGE_METADATA = Shared.of(
    "SELECT metadata FROM messages WHERE thread_id = ? AND id = ? AND deleted_ms IS NULL", lock=" FOR UPDATE"
)
#: The topic and metadata of a live thread, read under the write's lock: its row lock on PostgreSQL.
LOCK_THREAD = Shared.of("SELECT topic, metadata FROM threads WHERE id = ? AND deleted_ms IS NULL", lock=" FOR UPDATE")
#: A thread's last activity as its member ``p`` may know it (``t`` the thread): the last message's
#: time when that message is within the member's share-history window, else the thread's creation
#: (which ``get_thread`` shows every member), so no list reveals when a hidden message came.
VISIBLE_ACTIVITY = (
    "(CASE WHEN t.last_message_ms >= p.share_history_ms THEN t.last_message_ms ELSE t.created_ms END)"
)
#: :data:`T_THREAD_COLUMNS` with ``last_message_ms`` as the member ``p`` may know it.
LISTED_THREAD_COLUMNS = T_THREAD_COLUMNS.replace("t.last_message_ms", f"{VISIBLE_ACTIVITY} AS last_message_ms")
#: Set the given properties (NULL: unchanged); arguments: topic, metadata, keep retention,
#: retention, keep retention again, expiry, thread id.
UPDATE_THREAD = Shared.of(
    "UPDATE threads SET topic = coalesce(?, topic), metadata = coalesce(?, metadata), "
    "retention = CASE WHEN ? THEN retention ELSE ? END, "
    f"expires_ms = CASE WHEN ? THEN expires_ms ELSE ? END WHERE id = ? RETURNING {THREAD_COLUMNS}"
)
#: Mark a live thread deleted (with an expiry bound: only if expired by then); arguments: time,
#: thread id, the bound (None: none) twice.
DELETE_THREAD = Shared.of(
    "UPDATE threads SET deleted_ms = ? WHERE id = ? AND deleted_ms IS NULL "
    f"AND (CAST(? AS BIGINT) IS NULL OR expires_ms <= ?) RETURNING {THREAD_COLUMNS}"
)
DUE_THREADS = Shared.of(
    "SELECT id FROM threads WHERE expires_ms <= ? AND deleted_ms IS NULL ORDER BY expires_ms LIMIT ?"
)

# -- participants --------------------------------------------------------------------------------
#: Arguments: thread id, limit, offset.
LIST_PARTICIPANTS = Shared.of(
    f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE thread_id = ? AND {LIVE_MEMBER} "
    "ORDER BY id LIMIT ? OFFSET ?"
)
COUNT_PARTICIPANTS = Shared.of(f"SELECT count(*) FROM participants WHERE thread_id = ? AND {LIVE_MEMBER}")
LIVE_MEMBER_IDS = Shared.of(f"SELECT user_id FROM participants WHERE thread_id = ? AND {LIVE_MEMBER}")

# -- messages and receipts -----------------------------------------------------------------------
GET_MESSAGE = Shared.of(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? AND id = ?")
#: Arguments: thread id, user id, message id, read time.
UPSERT_RECEIPT = Shared.of(
    "INSERT INTO read_receipts (thread_id, user_id, message_id, read_ms) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (thread_id, user_id) DO UPDATE SET message_id = excluded.message_id, "
    "read_ms = excluded.read_ms"
)

# -- idempotency ---------------------------------------------------------------------------------
IDEMPOTENT_RESULT = Shared.of("SELECT result FROM idempotency WHERE scope = ? AND key = ?")
PRUNE_IDEMPOTENCY = Shared.of("DELETE FROM idempotency WHERE created_ms < ?")
