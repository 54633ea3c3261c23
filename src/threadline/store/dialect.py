"""SQL the two engines share, written once: a small dialect layer.

Statements that are the same on SQLite and PostgreSQL except for their
placeholders are written here once, with SQLite's ``?``; :class:`Shared` holds
both forms, PostgreSQL's numbered ``$1, $2, ...`` in the order the ``?`` appear,
so both engines pass their arguments in the same order. Statements that differ
in more than placeholders (locking clauses, ``greatest`` vs ``max``, collations,
arrays, how events take their positions) stay with their engine, in
``store/sqlite/`` and ``store/postgres/``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from .rows import MESSAGE_COLUMNS, PARTICIPANT_COLUMNS, T_THREAD_COLUMNS, THREAD_COLUMNS

__all__ = ["LIVE_MEMBER", "Shared", "numbered"]

#: The condition a membership row meets while the member is in the thread.
LIVE_MEMBER = "left_pos IS NULL"


def numbered(sql: str) -> str:
    """Rewrite the ``?`` placeholders of ``sql`` as PostgreSQL's ``$1, $2, ...``, in order.

    Args:
        sql: a statement whose only ``?`` are placeholders (none inside literals).

    Returns:
        The statement with numbered placeholders.
    """
    counter = itertools.count(1)
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
    def of(cls, sql: str) -> Shared:
        """The statement ``sql`` (written with ``?``) in both forms."""
        return cls(sql, numbered(sql))


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
