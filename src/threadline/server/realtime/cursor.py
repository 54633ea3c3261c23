"""Resume positions: the one place both wire protocols read, compare and write them.

A position is the store's commit order of an event (a 64-bit integer on both
engines; typing indicators, never stored, have position 0). Every question a
stream asks about positions goes through here: parsing what a client sent,
deciding where a resume starts given what the store still keeps, whether a
live event was covered by the replay, and the text form a client is given.
A change of representation (an opaque token over partitions, say) is made in
this module and :class:`Resume`, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from threadline.protocol.inputs import INT64_MAX

__all__ = ["Resume", "covered", "encode", "later", "parse", "resolve"]


def parse(text: str) -> int:
    """Read a position a client sent.

    Args:
        text: the client's text (a query parameter, a cached ``connectparams`` value).

    Returns:
        The position.

    Raises:
        ValueError: the text is not a non-negative 64-bit integer.
    """
    significant = text.lstrip("0")[:20] or "0"
    if not (text.isascii() and text.isdigit() and int(significant) <= INT64_MAX):
        raise ValueError("not a position")
    return int(text)


def encode(position: int) -> str:
    """The text form of a position, as a client is given it where the protocol wants text."""
    return str(position)


def covered(position: int, through: int) -> bool:
    """Whether an event at ``position`` was part of a replay that reached ``through``.

    Events without a position (typing indicators) are never covered.
    """
    return 0 < position <= through


def later(current: int, position: int) -> int:
    """The further of a stream's position and an event's."""
    return position if position > current else current


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a stream starts, given what the client asked and what the store keeps.

    Attributes:
        start: the position the replay reads after.
        latest: the newest position in the store.
        oldest: the oldest position the store still keeps.
        requested: the position the client asked for, or None for "from now".
        gap: the requested position is outside what the store keeps.
    """

    start: int
    latest: int
    oldest: int
    requested: int | None
    gap: bool

    @property
    def lost(self) -> bool:
        """Whether events the client never got were pruned (it asked for a position before the oldest)."""
        return self.requested is not None and self.requested < self.start


def resolve(requested: int | None, low: int, high: int) -> Resume:
    """Decide where a stream starts.

    Args:
        requested: the client's position, or None for "from now".
        low: the store's lower bound (events after it are kept).
        high: the newest position in the store.

    Returns:
        From now when nothing was asked; from ``requested`` when the store still has what follows
        it; otherwise from the nearest kept bound (``gap`` set).
    """
    gap = requested is not None and not low <= requested <= high
    if requested is None:
        start = high
    elif gap:
        start = low if requested < low else high
    else:
        start = requested
    return Resume(start=start, latest=high, oldest=low + 1, requested=requested, gap=gap)
