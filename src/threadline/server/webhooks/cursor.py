"""Everything that knows what an event-log position is, in one place.

A subscription's cursor is a resume token over the event partitions
(:mod:`threadline.store.positions`), the same kind a real-time client keeps:
per partition, the last position it has handled. Every event at or below it in
its partition was delivered, filtered out or dead-lettered. The events of one
thread are in one partition, whose positions rise in commit order, so delivery
stays in order per thread; a page of the log (``events_after``) is a prefix of
every partition's remaining events.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.store.positions import Cursor
from threadline.store.records import Event
from threadline.store.webhooks import read_cursor

from .mapping import ChatEvent

__all__ = ["after_batch", "lag", "loaded_end", "read"]


def read(token: str, partitions: int) -> Cursor:
    """A subscription's stored token as a cursor (StoreError when it is not one of this store's)."""
    return read_cursor(token, partitions)


def loaded_end(events: Sequence[Event], cursor: Cursor) -> Cursor:
    """The cursor moved past every event of a fetched page (a copy; the cursor itself when empty)."""
    end = cursor.copy()
    for event in events:
        end.advance(event.position)
    return end


def after_batch(remaining: Sequence[ChatEvent], end: Cursor) -> Cursor:
    """The cursor once a batch is handled: in each partition, just before its first event still queued.

    Args:
        remaining: the queued events not yet handled, in order.
        end: the cursor past every stored event mapped into the queue so far.

    Returns:
        The new cursor; events of the same position as a partition's first queued one
        are delivered again after a crash (at-least-once, same ids).
    """
    after = list(end.after)
    count = len(after)
    for event in remaining:
        part = event.position % count
        after[part] = min(after[part], event.position - count)
    return Cursor(after)


def lag(latest: Sequence[int], cursor: Cursor) -> int:
    """How many logged events (over every partition) are after the cursor."""
    count = len(latest)
    return sum(max(0, (head - done) // count) for head, done in zip(latest, cursor.after, strict=True))
