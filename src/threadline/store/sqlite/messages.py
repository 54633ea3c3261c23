"""Messages and read receipts in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .. import dialect
from ..base import Effects, NotAllowed, Outcome
from ..metadata import MetadataChange, apply_metadata
from ..records import MessageDraft, MessageRecord, ReadReceiptRecord
from ..rows import MESSAGE_COLUMNS, dump_json, load_json, message_from, receipt_from
from .core import SqliteCore

__all__ = ["SqliteMessages"]


class SqliteMessages(SqliteCore):
    """Messages and read receipts of :class:`~threadline.store.sqlite.SqliteStore`."""

    async def send_message(
        self, thread_id: str, draft: MessageDraft, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        def run(c: sqlite3.Connection) -> Outcome[MessageRecord]:
            # Inside the write (the one writer): a removed member can never send, nor replay a key.
            sender = draft.sender_id or ""  # no sender is no member
            members = None
            if effects.idempotency is not None:
                self._refuse(c, thread_id, sender)  # a deleted thread's member replays nothing either
            elif sender not in (members := self._members.of(c, thread_id)).ids:
                self._refuse(c, thread_id, sender)
                raise NotAllowed(thread_missing=False)  # not reached: _refuse has raised

            def apply() -> MessageRecord:
                # The thread's UPDATE that allocates the ids also checks that it is not deleted.
                pairs = self._next_ids(c, thread_id, 1, now_ms, live=True)
                return self._store_messages(c, thread_id, pairs, [draft], now_ms)[0]

            outcome = self._effects(c, effects, apply)
            if outcome.value is not None:
                outcome.events = self._publishable(c, thread_id, effects, outcome.value, now_ms, members=members)
            return outcome

        return await self._write(run, keeps_members=True)

    async def get_message(self, thread_id: str, message_id: str) -> MessageRecord | None:
        def run(c: sqlite3.Connection) -> MessageRecord | None:
            row = c.execute(
                dialect.GET_MESSAGE.sqlite, (thread_id, message_id)
            ).fetchone()
            message = None if row is None else message_from(row)
            if message is not None:
                self._fill_attachments(c, [message])
            return message

        return await self._peek(run)

    async def list_messages(
        self, thread_id: str, *, before_seq: int | None, min_created_ms: int, limit: int
    ) -> list[MessageRecord]:
        def run(c: sqlite3.Connection) -> list[MessageRecord]:
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? AND created_ms >= ?"
            args: list[Any] = [thread_id, min_created_ms]
            if before_seq is not None:
                sql += " AND seq < ?"
                args.append(before_seq)
            sql += " ORDER BY seq DESC LIMIT ?"
            args.append(limit)
            messages = [message_from(r) for r in c.execute(sql, args).fetchall()]
            self._fill_attachments(c, messages)
            return messages

        return await self._peek(run)

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
        dropped: list[str] = []

        def relink(c: sqlite3.Connection, message: MessageRecord) -> None:
            if attachments is None:
                self._fill_attachments(c, [message])
                return
            dropped[:] = self._drop_images(c, thread_id, message_id=message_id, keep=attachments)
            self._link_images(c, message, attachments)

        def run(c: sqlite3.Connection) -> Outcome[MessageRecord]:
            stored = None
            if metadata is not None:  # a patch is merged here, in the one writer's transaction
                row = c.execute(dialect.LOCK_MESSAGE_METADATA.sqlite, (thread_id, message_id)).fetchone()
                if row is None:
                    return Outcome()
                stored = apply_metadata(load_json(row["metadata"]), metadata)
            return self._change_message(
                c, thread_id, message_id, "content = coalesce(?, content), metadata = coalesce(?, metadata), "
                "edited_ms = ?", (content, dump_json(stored), now_ms), now_ms, effects, relink,
            )

        outcome = await self._write(run, keeps_members=True)
        await self.blobs.delete(dropped)
        return outcome

    async def delete_message(
        self, thread_id: str, message_id: str, now_ms: int, effects: Effects[MessageRecord]
    ) -> Outcome[MessageRecord]:
        dropped: list[str] = []

        def drop(c: sqlite3.Connection, message: MessageRecord) -> None:
            dropped[:] = self._drop_images(c, thread_id, message_id=message_id)

        outcome = await self._write(
            lambda c: self._change_message(
                c, thread_id, message_id, "deleted_ms = ?", (now_ms,), now_ms, effects, drop
            ),
            keeps_members=True,
        )
        await self.blobs.delete(dropped)
        return outcome

    def _change_message(
        self, c: sqlite3.Connection, thread_id: str, message_id: str, assignments: str, values: tuple[Any, ...],
        now_ms: int, effects: Effects[MessageRecord],
        then: Callable[[sqlite3.Connection, MessageRecord], None] | None = None,
    ) -> Outcome[MessageRecord]:
        """Change a live message (raising its version) and log the change's events; None if not live.

        ``then`` runs on the changed message before its events are made (its images).
        """
        row = c.execute(
            f"UPDATE messages SET {assignments}, version = max(version + 1, ?) "
            f"WHERE thread_id = ? AND id = ? AND deleted_ms IS NULL RETURNING {MESSAGE_COLUMNS}",
            (*values, now_ms, thread_id, message_id),
        ).fetchone()
        message = None if row is None else message_from(row)
        if message is not None and then is not None:
            then(c, message)
        outcome = Outcome(value=message)
        outcome.events = self._publishable(c, thread_id, effects, message, now_ms)
        return outcome

    # -- read receipts -------------------------------------------------------------------------------------

    async def send_read_receipt(
        self, receipt: ReadReceiptRecord, effects: Effects[ReadReceiptRecord]
    ) -> Outcome[ReadReceiptRecord]:
        def run(c: sqlite3.Connection) -> Outcome[ReadReceiptRecord]:
            def apply() -> ReadReceiptRecord:
                c.execute(
                    dialect.UPSERT_RECEIPT.sqlite,
                    (receipt.thread_id, receipt.user_id, receipt.message_id, receipt.read_ms),
                )
                return receipt

            outcome = self._effects(c, effects, apply)
            if outcome.value is not None:
                outcome.events = self._publishable(c, receipt.thread_id, effects, receipt, receipt.read_ms)
            return outcome

        return await self._write(run, keeps_members=True)

    async def list_read_receipts(
        self, thread_id: str, *, skip: int, limit: int, min_message_ms: int = 0
    ) -> list[ReadReceiptRecord]:
        window = (
            " AND EXISTS (SELECT 1 FROM messages m WHERE m.thread_id = r.thread_id AND m.id = r.message_id "
            "AND m.created_ms >= ?)" if min_message_ms > 0 else ""
        )
        args = (thread_id, min_message_ms, limit, skip) if window else (thread_id, limit, skip)
        rows = await self._peek(
            lambda c: c.execute(
                "SELECT r.thread_id, r.user_id, r.message_id, r.read_ms FROM read_receipts r "
                f"WHERE r.thread_id = ?{window} ORDER BY r.read_ms DESC, r.user_id LIMIT ? OFFSET ?",
                args,
            ).fetchall()
        )
        return [receipt_from(r) for r in rows]
