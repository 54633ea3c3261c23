"""Participants (memberships) in the SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .. import dialect
from ..base import Effects, Outcome, TooManyParticipants
from ..dialect import LIVE_MEMBER
from ..records import MessageDraft, MessageRecord, ParticipantRecord
from ..rows import PARTICIPANT_COLUMNS, participant_from
from .core import SqliteCore

__all__ = ["SqliteParticipants"]


class SqliteParticipants(SqliteCore):
    """Participants (memberships) of :class:`~threadline.store.sqlite.SqliteStore`."""

    async def list_participants(self, thread_id: str, *, skip: int, limit: int) -> list[ParticipantRecord]:
        rows = await self._peek(
            lambda c: c.execute(
                dialect.LIST_PARTICIPANTS.sqlite,
                (thread_id, limit, skip),
            ).fetchall()
        )
        return [participant_from(r) for r in rows]

    async def count_participants(self, thread_id: str) -> int:
        row = await self._peek(
            lambda c: c.execute(
                dialect.COUNT_PARTICIPANTS.sqlite, (thread_id,)
            ).fetchone()
        )
        return int(row[0])

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
        def run(c: sqlite3.Connection) -> Outcome[MessageRecord | None]:
            def apply() -> MessageRecord | None:
                # The one writer makes this read and the insert below atomic: the count is exact.
                live = {
                    r["user_id"]
                    for r in c.execute(
                        dialect.LIVE_MEMBER_IDS.sqlite,
                        (thread_id,),
                    )
                }
                # Members already in are left exactly as they are (share time, name, metadata).
                fresh = list({p.user_id: p for p in participants if p.user_id not in live}.values())
                if not fresh:
                    return None
                if max_members is not None and len(live) + len(fresh) > max_members:
                    raise TooManyParticipants(max_members)
                draft.participants = fresh
                return self._insert_messages(c, thread_id, [draft], now_ms)[0]

            outcome = self._effects(c, effects, apply)
            if outcome.value is not None:
                added = outcome.value.participants or []
                outcome.events = self._publishable(
                    c, thread_id, effects, outcome.value, now_ms,
                    lambda pos, last: self._join(c, thread_id, added, pos or last + 1),
                )
            return outcome

        return await self._write(run)

    async def remove_participant(
        self, thread_id: str, user_id: str, draft: MessageDraft, now_ms: int,
        effects: Effects[MessageRecord | None],
    ) -> Outcome[MessageRecord | None]:
        def run(c: sqlite3.Connection) -> Outcome[MessageRecord | None]:
            row = c.execute(
                f"SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE thread_id = ? AND user_id = ? "
                f"AND {LIVE_MEMBER}",
                (thread_id, user_id),
            ).fetchone()
            if row is None:
                return Outcome()
            draft.participants = [participant_from(row)]
            message = self._insert_messages(c, thread_id, [draft], now_ms)[0]
            outcome: Outcome[MessageRecord | None] = Outcome(value=message)

            def leave(pos: int | None, last: int) -> None:
                # With no event of its own, the member has heard everything up to now and nothing after.
                c.execute(
                    f"UPDATE participants SET left_pos = ? WHERE thread_id = ? AND user_id = ? AND {LIVE_MEMBER}",
                    (pos if pos is not None else last, thread_id, user_id),
                )

            outcome.events = self._publishable(c, thread_id, effects, message, now_ms, leave)
            return outcome

        return await self._write(run)
