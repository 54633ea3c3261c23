"""Everything that knows what an event-log position is, in one place.

A subscription's cursor is the last position it has handled: every event at
or below it was delivered, filtered out or dead-lettered. Positions are one
global counter today; when the log moves to per-thread positions, only this
module (and the store queries it names) has to change.
"""

from __future__ import annotations

from collections.abc import Sequence

from threadline.store.records import Event

from .mapping import ChatEvent

__all__ = ["after_batch", "loaded_end"]


def loaded_end(events: Sequence[Event], cursor: int) -> int:
    """The position up to which a fetched page of events reaches (the cursor when empty)."""
    return events[-1].position if events else cursor


def after_batch(remaining: Sequence[ChatEvent], end: int) -> int:
    """The cursor once a batch is handled: just before the first event still queued, else ``end``.

    Args:
        remaining: the queued events not yet handled, in order.
        end: the position of the last stored event mapped into the queue so far.

    Returns:
        The new cursor; events of the same position as the first queued one
        are delivered again after a crash (at-least-once, same ids).
    """
    return remaining[0].position - 1 if remaining else end
