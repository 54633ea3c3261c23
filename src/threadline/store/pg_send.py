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
id are two 18-digit marks; the function writes the payload with the real
values in place of the marks, and this module does the same replacement on its
own copy. A mark cannot come from user input by chance: marks count up from a
random 18-digit start drawn when the process starts (never two alike, never shown
to anyone: the real values replace them everywhere), and the replacement is the
same code path on both sides (``replace`` on text).

The sends made in the same turn of the event loop are written together
(:class:`SendTurn`): one ``threadline_send_batch`` statement (migrations 0045, 0046) decides and
writes them set-based, so a thread's row and its partition's counter are taken and updated
once and every lock is released by one commit instead of being handed from send to
send, each waiting for the previous commit. A send refused there (thread gone, sender not a
member) fails alone; a lone send takes the one-send statement as before. (It writes exactly
what ``threadline_send_many``, migration 0043, wrote running each send through the one-send
function in a subtransaction: tests/store/test_pg_send_batch_equivalence.py compares them.)

A thread has at most one batch in flight per process: a send to a thread whose batch is
still being written is held, in order, and joins the next batch once that one has ended. On
one busy thread, batches of successive turns would otherwise run on as many connections and
queue on the thread's row lock, each waiting for the previous commit; held, they pile up into
one bigger batch on one connection. Sends to other threads are not held back.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from .base import Effects, NotAllowed, Outcome
from .positions import partition_of
from .records import Event, MessageDraft, MessageRecord
from .rows import drafted_message, dump_json

__all__ = ["Prepared", "SendTurn", "prepare", "send_in_one_statement", "supports"]

_SQL = (
    "SELECT replayed, seq, message_id, base, recipients FROM threadline_send("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
)
_SQL_MANY = (
    "SELECT refused, replayed, seq, message_id, base, recipients FROM threadline_send_batch("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
)
#: The most sends one statement writes: it bounds the statement's arrays and how long it holds its locks.
MAX_BATCH = 32


def supports(draft: MessageDraft, effects: Effects[MessageRecord]) -> bool:
    """Whether the one-statement send can write this draft exactly as the general path would.

    Attachments (image links) and a keyed write without a result take the general path.
    """
    return not draft.attachments and (effects.idempotency is None or effects.result is not None)


#: The next marks: from a random 18-digit start, one up per mark (a draw per mark cost ~2% of a send).
_MARKS = itertools.count(10**17 + secrets.randbelow(8 * 10**17))


def _mark() -> int:
    """An 18-digit number no real id, sequence id or user text will equal (see the module)."""
    return next(_MARKS)


@dataclass
class Prepared:
    """A send ready for the database: its payloads built from a stand-in message (see the module).

    ``id_mark`` and ``seq_mark`` are the marks' text, as the statements take them and the payloads hold them.
    """

    thread_id: str
    draft: MessageDraft
    now_ms: int
    id_mark: str
    seq_mark: str
    items: list[tuple[str, bytes]]
    reveals: int | None
    scope: str | None
    key: str | None
    result: str

    @property
    def batchable(self) -> bool:
        """Whether it can share a statement with other sends (at most one event, as a message has)."""
        return len(self.items) <= 1


def prepare(thread_id: str, draft: MessageDraft, now_ms: int, effects: Effects[MessageRecord]) -> Prepared:
    """Build a send's events and idempotency result from a stand-in message (see the module)."""
    id_mark, seq_mark = _mark(), _mark()
    stand_in = drafted_message(thread_id, seq_mark, id_mark, draft, now_ms)
    items = effects.events(stand_in) if effects.events is not None else []
    reveals = effects.reveals(stand_in) if effects.events is not None and effects.reveals is not None else None
    scope, key = effects.idempotency if effects.idempotency is not None else (None, None)
    result = effects.result(stand_in) if effects.result is not None and scope is not None else ""
    return Prepared(thread_id, draft, now_ms, stand_in.id, str(seq_mark), items, reveals, scope, key, result)


def _outcome(send: Prepared, row: Any, partitions: int) -> Outcome[MessageRecord]:
    """The outcome of a written send, from its row of either statement."""
    if row["replayed"] is not None:
        return Outcome(replayed=row["replayed"])
    seq, message_id = row["seq"], row["message_id"]
    message = drafted_message(send.thread_id, seq, message_id, send.draft, send.now_ms)
    outcome = Outcome(value=message)
    if send.items:
        position, recipients = row["base"], tuple(row["recipients"])
        id_mark, real_id = send.id_mark.encode(), message.id.encode()
        seq_mark, real_seq = send.seq_mark.encode(), b"%d" % seq
        thread_id, now_ms, reveals, events = send.thread_id, send.now_ms, send.reveals, outcome.events
        for kind, payload in send.items:
            position += partitions
            payload = payload.replace(id_mark, real_id).replace(seq_mark, real_seq)
            events.append(Event(position, thread_id, kind, payload, now_ms, recipients, reveals))
    return outcome


async def send_in_one_statement(conn: Any, send: Prepared, partitions: int) -> Outcome[MessageRecord]:
    """Write a message, its idempotency key and its events in one statement and commit.

    Args:
        conn: a pooled asyncpg connection, not in a transaction.
        send: the prepared send (no attachments: see :func:`supports`).
        partitions: the store's event partitions (:mod:`.positions`).

    Returns:
        The written message with its events (positions and recipients set), or the
        stored result of an earlier write with the same key.

    Raises:
        NotAllowed: the thread does not exist or is deleted, or the sender is not a live member
            (checked under the thread's row lock; a replay is refused to a non-member too).
        asyncpg.exceptions.TransactionRollbackError: a conflict to retry.
    """
    draft = send.draft
    try:
        row = await conn.fetchrow(
            _SQL, send.thread_id, send.scope, send.key, draft.type, draft.sender_id, draft.sender_display_name,
            draft.content, dump_json(draft.metadata), send.now_ms, send.id_mark, send.seq_mark,
            send.result, [kind for kind, _ in send.items], [payload for _, payload in send.items], send.reveals,
            partition_of(send.thread_id, partitions), partitions,
        )
    except asyncpg.PostgresError as exc:
        code = getattr(exc, "sqlstate", None)
        if code in ("TL404", "TL403"):
            raise NotAllowed(thread_missing=code == "TL404") from exc
        raise
    return _outcome(send, row, partitions)


async def send_many(conn: Any, sends: list[Prepared], partitions: int) -> list[Outcome[MessageRecord] | NotAllowed]:
    """Write sends (each :attr:`Prepared.batchable`) in one statement and commit.

    ``sends`` must keep each thread's sends in the order they were made (their sequence ids
    and positions follow it); ordered by (partition, thread) as :class:`SendTurn` does.

    Returns:
        Per send, in order, its outcome or the :class:`NotAllowed` that refused it alone.

    Raises:
        asyncpg.exceptions.TransactionRollbackError: a conflict to retry (nothing was written).
    """
    rows = await conn.fetch(
        _SQL_MANY, [s.thread_id for s in sends], [s.scope for s in sends], [s.key for s in sends],
        [s.draft.type for s in sends], [s.draft.sender_id for s in sends],
        [s.draft.sender_display_name for s in sends], [s.draft.content for s in sends],
        [dump_json(s.draft.metadata) for s in sends], [s.now_ms for s in sends],
        [s.id_mark for s in sends], [s.seq_mark for s in sends], [s.result for s in sends],
        [s.items[0][0] if s.items else None for s in sends], [s.items[0][1] if s.items else None for s in sends],
        [s.reveals for s in sends],
        [partition_of(s.thread_id, partitions) for s in sends], partitions,
    )
    if len(rows) != len(sends):  # pragma: no cover - the function returns one row per send
        raise RuntimeError(f"threadline_send_batch returned {len(rows)} rows for {len(sends)} sends")
    return [
        NotAllowed(thread_missing=row["refused"] == "TL404") if row["refused"] is not None
        else _outcome(send, row, partitions)
        for send, row in zip(sends, rows, strict=True)
    ]


_Pending = tuple[Prepared, "asyncio.Future[Outcome[MessageRecord]]"]
Retrying = Callable[[Callable[[Any], Awaitable[Any]]], Awaitable[Any]]


class SendTurn:
    """Writes sends in batches, at most one batch in flight per thread.

    A send to a thread with no batch in flight goes out with the other such sends made in
    the same turn of the event loop. A send to a thread that has one is held, after that
    thread's earlier held sends, until that batch has ended (committed or failed); then the
    thread's held sends (up to :data:`MAX_BATCH`) go out together in the next batch, with
    whatever else is waiting, before the ended batch's senders are answered. So a busy thread's
    sends pile up into bigger batches instead of queuing on its row lock on many connections,
    and a thread's sends are written in the order they were made. A send whose caller gave up
    (was cancelled) before its statement was started is not written.

    Args:
        retrying: runs a function on a pooled connection, again on a conflict (the store's).
        partitions: returns the store's event partitions.
    """

    def __init__(self, retrying: Retrying, partitions: Callable[[], int]) -> None:
        self._retrying = retrying
        self._partitions = partitions
        #: per thread, its sends not yet in a statement, in the order they were made.
        self._waiting: dict[str, list[_Pending]] = {}
        #: the threads with a batch in flight: their waiting sends are held until it ends.
        self._busy: set[str] = set()
        #: whether a :meth:`_flush` is scheduled (every waiting thread is busy or about to be flushed).
        self._flush_due = False
        self._writing: set[asyncio.Task[None]] = set()
        #: Statements written and sends they carried (their ratio is the mean batch).
        self.statements = 0
        self.sends = 0

    async def send(self, send: Prepared) -> Outcome[MessageRecord]:
        """Write a send with the others made in this turn, or after its thread's batch in flight.

        Returns:
            The send's outcome, once committed.

        Raises:
            NotAllowed: as :func:`send_in_one_statement`, for this send alone.
            StoreError: whatever the store raised for the statement (every send in it).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome[MessageRecord]] = loop.create_future()
        self._waiting.setdefault(send.thread_id, []).append((send, future))
        if send.thread_id not in self._busy:
            self._schedule(loop)
        return await future

    @property
    def waiting(self) -> int:
        """Sends handed over and not yet in a statement (held behind their thread's batch, or due)."""
        return sum(len(queue) for queue in self._waiting.values())

    async def drain(self) -> None:
        """Wait until every send handed over so far, held ones too, has been written or has failed."""
        while self._waiting or self._writing:
            if self._writing:
                await asyncio.wait(set(self._writing))  # unlike gather, never cancels the batches
            else:
                await asyncio.sleep(0)  # the flush is due: it runs first

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._flush_due:
            self._flush_due = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Start batches for the waiting sends of every thread without a batch in flight."""
        self._flush_due = False
        partitions = self._partitions()
        # the statement's lock order (migrations 0043, 0045); a thread's sends keep their order
        ready = [t for t in self._waiting if t not in self._busy]
        ready.sort(key=lambda t: (partition_of(t, partitions), t))
        batch: list[_Pending] = []
        for thread_id in ready:
            queue = [p for p in self._waiting.pop(thread_id) if not p[1].done()]  # done: the caller gave up
            if not queue:
                continue
            if len(batch) == MAX_BATCH:
                self._launch(batch)
                batch = []
            room = MAX_BATCH - len(batch)
            batch.extend(queue[:room])
            if len(queue) > room:  # the rest waits for this batch: one in flight per thread
                self._waiting[thread_id] = queue[room:]
            self._busy.add(thread_id)
        if batch:
            self._launch(batch)

    def _launch(self, batch: list[_Pending]) -> None:
        task = asyncio.ensure_future(self._write(batch))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, pending: list[_Pending]) -> None:
        sends = [send for send, _ in pending]
        partitions = self._partitions()
        results: list[Outcome[MessageRecord] | BaseException]
        try:
            try:
                if len(sends) == 1:
                    results = [await self._retrying(lambda c: send_in_one_statement(c, sends[0], partitions))]
                else:
                    results = list(await self._retrying(lambda c: send_many(c, sends, partitions)))
            except NotAllowed as exc:
                results = [exc]
            except BaseException as exc:  # the statement failed: none of its sends was written
                results = [exc] * len(sends)
        finally:
            # Committed or failed: the threads' held sends go out in the next batch, started now,
            # before this batch's senders are answered: answering them takes the event loop a
            # while, and the database would sit idle for it (a busy thread's batches then follow
            # each other with no gap, instead of one in flight ~60% of the time).
            threads = {send.thread_id for send in sends}
            self._busy -= threads
            if not threads.isdisjoint(self._waiting):
                self._flush()
        self.statements += 1
        self.sends += len(sends)
        for (_, future), result in zip(pending, results, strict=True):
            if future.done():  # the caller gave up; the send committed all the same
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
