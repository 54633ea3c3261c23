"""Messages and read receipts in the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .. import dialect, pg_send
from ..base import Effects, NotAllowed, Outcome
from ..dialect import LIVE_MEMBER
from ..metadata import MetadataChange, apply_metadata
from ..records import MessageDraft, MessageRecord, ReadReceiptRecord
from ..rows import MESSAGE_COLUMNS, dump_json, load_json, message_from, receipt_from
from .core import Connection, PostgresCore
from .finish import _Finish

__all__ = ["PostgresMessages"]


class PostgresMessages(PostgresCore):
    """Messages and read receipts of :class:`~threadline.store.postgres.PostgresStore`."""

    async def send_message(
        self, thread_id: str, draft: MessageDraft, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        """Append a message with the next sequence id and a fresh epoch-ms id.

        One statement and its commit (:mod:`threadline.store.pg_send`), unless the message links images;
        with the other sends to the thread made in the same turn of the event loop when it has one event.

        Raises:
            NotAllowed: the thread is missing or deleted, or the sender is not a live member.
        """
        if pg_send.supports(draft, effects):
            send = pg_send.prepare(thread_id, draft, now_ms, effects)
            if send.batchable:
                return await self.send_turn.send(send)
            partitions = self.partitions
            return await self._retrying(lambda c: pg_send.send_in_one_statement(c, send, partitions))

        async def run(c: Connection, finish: _Finish) -> Outcome[MessageRecord]:
            # as threadline_send: the thread row first, then the sender's membership under it
            row = await c.fetchrow(
                "SELECT t.deleted_ms IS NULL AS live, EXISTS (SELECT 1 FROM participants p WHERE p.thread_id = t.id "
                f"AND p.user_id = $2 AND p.{LIVE_MEMBER}) AS member FROM threads t WHERE t.id = $1 FOR UPDATE OF t",
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
                dialect.GET_MESSAGE.postgres, thread_id, message_id
            )
            message = None if row is None else message_from(row)
            if message is not None:
                await self._fill_attachments(c, [message])
            return message

        return await self._read(run)

    async def list_messages(
        self, thread_id: str, *, before_seq: int | None, min_created_ms: int, limit: int
    ) -> list[MessageRecord]:
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
        metadata: MetadataChange | None,
        now_ms: int,
        effects: Effects[MessageRecord],
        attachments: Sequence[str] | None = None,
    ) -> Outcome[MessageRecord]:
        """Edit a live message (a None field is left as it is); None if not live.

        ``attachments`` replaces the message's images; those it drops are deleted. A metadata
        patch is merged with the stored map under the message's row lock.

        Raises:
            MetadataTooLarge: the merged metadata is over the patch's limit (nothing written).
        """

        async def relink(c: Connection, message: MessageRecord) -> None:
            if attachments is None:
                await self._fill_attachments(c, [message])
                return
            await self._drop_images(c, thread_id, message_id=message_id, keep=attachments)
            await self._link_images(c, message, attachments)

        async def run(c: Connection, finish: _Finish) -> Outcome[MessageRecord]:
            stored = None
            if metadata is not None:
                row = await c.fetchrow(dialect.LOCK_MESSAGE_METADATA.postgres, thread_id, message_id)
                if row is None:
                    return Outcome()
                stored = apply_metadata(load_json(row["metadata"]), metadata)
            return await self._change_message(
                c, finish, thread_id, message_id,
                "content = coalesce($1, content), metadata = coalesce($2, metadata), edited_ms = $3",
                (content, dump_json(stored), now_ms), now_ms, effects, relink,
            )

        return await self._write_events(run)

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
        async def run(c: Connection, finish: _Finish) -> Outcome[ReadReceiptRecord]:
            async def apply() -> ReadReceiptRecord:
                await c.execute(
                    dialect.UPSERT_RECEIPT.postgres,
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
