"""Participants (memberships) in the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Sequence

from .. import dialect
from ..base import Effects, Outcome, TooManyParticipants
from ..dialect import LIVE_MEMBER
from ..records import MessageDraft, MessageRecord, ParticipantRecord
from ..rows import PARTICIPANT_COLUMNS, participant_from
from .core import Connection, PostgresCore
from .finish import _Finish

__all__ = ["PostgresParticipants"]


class PostgresParticipants(PostgresCore):
    """Participants (memberships) of :class:`~threadline.store.postgres.PostgresStore`."""

    async def list_participants(self, thread_id: str, *, skip: int, limit: int) -> list[ParticipantRecord]:
        rows = await self._read(
            lambda c: c.fetch(
                dialect.LIST_PARTICIPANTS.postgres,
                thread_id, limit, skip,
            )
        )
        return [participant_from(r) for r in rows]

    async def count_participants(self, thread_id: str) -> int:
        """How many live members the thread has."""
        value = await self._read(
            lambda c: c.fetchval(
                dialect.COUNT_PARTICIPANTS.postgres, thread_id
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
                        dialect.LIVE_MEMBER_IDS.postgres, thread_id
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
        async def run(c: Connection, finish: _Finish) -> Outcome[MessageRecord | None]:
            if not await self._lock_thread(c, thread_id):
                return Outcome()
            row = await c.fetchrow(
                f"SELECT id, {PARTICIPANT_COLUMNS} FROM participants WHERE thread_id = $1 AND user_id = $2 "
                f"AND {LIVE_MEMBER}",
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
