"""The final message of an event-writing PostgreSQL transaction (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dialect import LIVE_MEMBER
from ..records import Event

__all__ = ["_Finish"]

#: Placeholder positions of a write are -(slot * _SPAN + n) for its n-th event, n < _SPAN.
_SPAN = 65536
#: The session setting through which a write's final message hands its first position back.
_BASE_SETTING = "threadline.event_base"


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
    #: the thread's partition, and how many there are (:mod:`threadline.store.positions`).
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
                f"WHERE participants.id IN ({ids}) AND participants.{LIVE_MEMBER})"
            )
        return (f"WITH {', '.join(parts)} SELECT set_config('{_BASE_SETTING}', c.base::text, false) FROM c; "
                f"{then}COMMIT")
