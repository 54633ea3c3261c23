"""``send_message`` on PostgreSQL in one round trip (the ``threadline_send`` function, migration 0040).

The general write path (:mod:`.postgres`) needs ``BEGIN``, the idempotency
claim, the thread's ``UPDATE ... RETURNING``, the message insert, the event
insert, the final counter-and-``COMMIT`` message and a read of the recipients:
seven round trips, with the thread row locked across most of them. A send is
the write that matters most, and all of it can run on the server: this module
calls one function as a single statement outside any explicit transaction, so
PostgreSQL commits as soon as it returns and the thread row and the event
counter are locked for that statement only.

The message's id and sequence id are allocated inside the function, yet the
event payload and the idempotency result are built by the service from the
message. So they are built here from a stand-in message whose id and sequence
id are two random 18-digit marks; the function writes the payload with the real
values in place of the marks, and this module does the same replacement on its
own copy. A mark cannot come from user input by chance (each is a fresh random
number per send), and the replacement is the same code path on both sides
(``replace`` on text).
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from .base import Effects, NotAllowed, Outcome
from .positions import partition_of
from .records import Event, MessageDraft, MessageRecord
from .rows import drafted_message, dump_json

__all__ = ["send_in_one_statement", "supports"]

_SQL = (
    "SELECT replayed, seq, message_id, base, recipients FROM threadline_send("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
)


def supports(draft: MessageDraft, effects: Effects[MessageRecord]) -> bool:
    """Whether the one-statement send can write this draft exactly as the general path would.

    Attachments (image links) and a keyed write without a result take the general path.
    """
    return not draft.attachments and (effects.idempotency is None or effects.result is not None)


def _mark() -> int:
    """A random 18-digit number: a stand-in that no real id, sequence id or user text will equal."""
    return 10**17 + secrets.randbelow(9 * 10**17)


async def send_in_one_statement(
    conn: Any, thread_id: str, draft: MessageDraft, now_ms: int, effects: Effects[MessageRecord],
    partitions: int,
) -> Outcome[MessageRecord]:
    """Write a message, its idempotency key and its events in one statement and commit.

    Args:
        conn: a pooled asyncpg connection, not in a transaction.
        thread_id: the thread.
        draft: the message (no attachments: see :func:`supports`).
        now_ms: the write's time.
        effects: idempotency, result, events and share-history time of the write.
        partitions: the store's event partitions (:mod:`.positions`).

    Returns:
        The written message with its events (positions and recipients set), or the
        stored result of an earlier write with the same key.

    Raises:
        NotAllowed: the thread does not exist or is deleted, or the sender is not a live member
            (checked under the thread's row lock; a replay is refused to a non-member too).
        asyncpg.exceptions.TransactionRollbackError: a conflict to retry.
    """
    id_mark, seq_mark = _mark(), _mark()
    stand_in = drafted_message(thread_id, seq_mark, id_mark, draft, now_ms)
    items = effects.events(stand_in) if effects.events is not None else []
    reveals = effects.reveals(stand_in) if effects.events is not None and effects.reveals is not None else None
    scope, key = effects.idempotency if effects.idempotency is not None else (None, None)
    result = effects.result(stand_in) if effects.result is not None and scope is not None else ""
    try:
        row = await conn.fetchrow(
            _SQL, thread_id, scope, key, draft.type, draft.sender_id, draft.sender_display_name,
            draft.content, dump_json(draft.metadata), now_ms, str(id_mark), str(seq_mark), result,
            [kind for kind, _ in items], [payload for _, payload in items], reveals,
            partition_of(thread_id, partitions), partitions,
        )
    except asyncpg.PostgresError as exc:
        code = getattr(exc, "sqlstate", None)
        if code in ("TL404", "TL403"):
            raise NotAllowed(thread_missing=code == "TL404") from exc
        raise
    if row["replayed"] is not None:
        return Outcome(replayed=row["replayed"])
    seq, message_id = int(row["seq"]), int(row["message_id"])
    message = drafted_message(thread_id, seq, message_id, draft, now_ms)
    outcome = Outcome(value=message)
    if items:
        base = int(row["base"])
        recipients = tuple(row["recipients"])
        marks = ((str(id_mark).encode(), str(message_id).encode()), (str(seq_mark).encode(), str(seq).encode()))
        for n, (kind, payload) in enumerate(items, 1):
            for mark, real in marks:
                payload = payload.replace(mark, real)
            outcome.events.append(Event(base + n * partitions, thread_id, kind, payload, now_ms, recipients, reveals))
    return outcome
