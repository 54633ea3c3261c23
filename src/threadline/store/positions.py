"""Event positions over partitions, and the opaque resume token a real-time client keeps.

Events are ordered per **partition**, not globally: a thread belongs to one of
``partitions`` partitions (a fixed hash of its id), and each partition has its
own counter, taken under the same kind of short lock a thread write holds
anyway. Writes to threads of different partitions never wait on one another;
only threads that share a partition share a counter. (SQLite has one writer,
so it keeps one partition: its positions are exactly its old global ones.)

A stored event's ``position`` is one integer that says both where it is and in
which partition: ``n * partitions + partition`` for the partition's n-th event.
So positions of one partition (hence of one thread) rise in commit order, and
membership intervals (``joined_pos``/``left_pos``), which only ever compare
positions of one thread, keep their meaning.

A subscriber's resume point is a :class:`Cursor`: the last position delivered in
each partition. Its text form (:meth:`Cursor.token`) is ``p`` followed by the
partitions' counts in hexadecimal, separated by dots: bounded by the number of
partitions, however many threads the user is in. Clients treat it as opaque.
An old integer position is not a token: :func:`parse` reports it as
:data:`LEGACY`, and the server answers "resume impossible, refetch"
(``resumeGap``) rather than misreading it.

The one API every reader of the log uses (the WebSocket endpoint, the Redis
hub's gap fill, and any other channel that replays events):

* ``store.events_since(user_id, cursor.after, limit)``: the stored events after
  the cursor that the user was a recipient of, in position order;
* :meth:`Cursor.advance`: move the cursor past a delivered event;
* :meth:`Cursor.covers`: whether an event is at or before the cursor (already
  delivered or replayed), so a live copy of it is skipped.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Final

__all__ = ["LEGACY", "Cursor", "parse", "partition_of"]

#: What :func:`parse` returns for an old integer position (resume impossible).
LEGACY: Final = "legacy"
#: The largest old integer position (a signed 64-bit event id); a longer number is malformed.
_MAX_LEGACY: Final = 2**63 - 1
#: The most partitions a token may name (a token is at most ~10 characters per partition).
MAX_PARTITIONS: Final = 256


def partition_of(thread_id: str, partitions: int) -> int:
    """The partition of a thread: the first 32 bits of the MD5 of its id, modulo ``partitions``.

    PostgreSQL computes the same value in SQL (``threadline_part``, migration 0040).

    Args:
        thread_id: the thread's id.
        partitions: how many partitions the store has.

    Returns:
        A number in ``range(partitions)``.
    """
    if partitions == 1:
        return 0
    return _hashed(thread_id) % partitions


@functools.lru_cache(maxsize=16_384)
def _hashed(thread_id: str) -> int:
    """The first 32 bits of the MD5 of a thread id, remembered (a PostgreSQL send asks two or three times).

    Bounded: the least recently used of at most 16,384 ids are forgotten (~2 MB at most).
    """
    return int.from_bytes(hashlib.md5(thread_id.encode(), usedforsecurity=False).digest()[:4], "big")


class Cursor:
    """The last position delivered in each partition (a resume point).

    Args:
        after: per partition, the last position delivered (``n * len(after) + partition``).
    """

    __slots__ = ("_segments", "after")

    def __init__(self, after: Sequence[int]) -> None:
        self.after = list(after)
        count = len(self.after)
        self._segments = [format(p // count, "x") for p in self.after]

    @classmethod
    def start(cls, partitions: int) -> Cursor:
        """The cursor before any event of any partition."""
        return cls(list(range(partitions)))

    @property
    def partitions(self) -> int:
        """How many partitions the cursor spans."""
        return len(self.after)

    def covers(self, position: int) -> bool:
        """Whether the event at ``position`` is at or before this cursor (0, an ephemeral event: no)."""
        return position > 0 and position <= self.after[position % len(self.after)]

    def advance(self, position: int) -> bool:
        """Move past the event at ``position``; False (and no change) when it is not after the cursor."""
        count = len(self.after)
        part = position % count
        if position <= 0 or position <= self.after[part]:
            return False
        self.after[part] = position
        self._segments[part] = format(position // count, "x")
        return True

    def copy(self) -> Cursor:
        """An independent copy."""
        return Cursor(self.after)

    def token(self) -> str:
        """The text form, opaque to clients: ``p`` and the partitions' counts in hex, dot-separated."""
        return "p" + ".".join(self._segments)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cursor) and self.after == other.after

    def __hash__(self) -> int:
        return hash(tuple(self.after))

    def __repr__(self) -> str:
        return f"Cursor({self.token()})"


def parse(text: str) -> Cursor | str:
    """Read a resume token.

    Args:
        text: a token from :meth:`Cursor.token`, or an old integer position.

    Returns:
        The cursor, or :data:`LEGACY` for an old integer position.

    Raises:
        ValueError: the text is neither.
    """
    if text.isascii() and text.isdigit():
        if len(text) > 19 or int(text) > _MAX_LEGACY:  # past 64 bits: never a position this server gave
            raise ValueError("after must be a token from a previous event's position.")
        return LEGACY
    if not text.startswith("p") or len(text) > MAX_PARTITIONS * 11:
        raise ValueError("after must be a token from a previous event's position.")
    parts = text[1:].split(".")
    if len(parts) > MAX_PARTITIONS or not all(p and len(p) <= 12 and _is_hex(p) for p in parts):
        raise ValueError("after must be a token from a previous event's position.")
    count = len(parts)
    return Cursor([int(p, 16) * count + k for k, p in enumerate(parts)])


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
