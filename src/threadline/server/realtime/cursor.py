"""Resume positions: the one place both wire protocols read, compare and write them.

An event's position is one integer that names its partition and its place in
that partition's commit order (:mod:`threadline.store.positions`; typing
indicators, never stored, have position 0). What a stream keeps, and what a
client is given to resume from, is a :class:`~threadline.store.positions.Cursor`:
the last position delivered in each partition, sent as an opaque token
(``p`` and hex counts, dot-separated). Every question a stream asks about
positions goes through here: parsing what a client sent, deciding where a
resume starts given what the store still keeps, whether a live event was
covered by the replay, moving the cursor past a delivered event, and the
text form a client is given.

What cannot be resumed is kept as the text the client sent (a :data:`Point`
that is a ``str``): an old integer position (from before partitioned
positions) or a token of another partitioning. :func:`resolve` answers it as
a gap (native ``resumeGap``, browser ``trouter.message_loss``): refetch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from threadline.store import positions
from threadline.store.positions import Cursor

__all__ = ["Cursor", "Point", "Resume", "covered", "encode", "furthest", "later", "parse", "resolve"]

#: A resume point as a stream holds it: a cursor, or the text of one that cannot be resumed.
Point = Cursor | str


def parse(text: str) -> Point:
    """Read a resume point a client sent.

    Args:
        text: the client's text (the native ``after``, a cached ``connectparams.pos``).

    Returns:
        The cursor; or, for an old integer position, the text as sent (resume impossible).

    Raises:
        ValueError: the text is neither a token nor an old integer position.
    """
    parsed = positions.parse(text)
    return text if isinstance(parsed, str) else parsed


def encode(point: Point | None) -> str | None:
    """The text form a client is given (a token; an unresumable point as it was sent; None stays None)."""
    if point is None or isinstance(point, str):
        return point
    return point.token()


def covered(position: int, through: Cursor | None) -> bool:
    """Whether an event at ``position`` was part of a replay that reached ``through``.

    Events without a position (typing indicators) are never covered; nothing is before the replay ends.
    """
    return through is not None and through.covers(position)


def later(current: Cursor | None, position: int) -> Cursor | None:
    """Move a stream's cursor past an event (in place; no change for an earlier event or position 0).

    Returns:
        ``current`` (None while the stream has no cursor yet).
    """
    if current is not None:
        current.advance(position)
    return current


def furthest(points: Sequence[Point], partitions: int) -> Point | None:
    """The furthest of several resume points, partition by partition (each lost nothing up to it).

    Args:
        points: what is known of a client's resume point (a node's record, the client's cached one).
        partitions: the store's partitions; cursors of another partitioning cannot be merged.

    Returns:
        The merged cursor; else the first unresumable point (so the loss is reported); None if none.
    """
    cursors = [p for p in points if isinstance(p, Cursor) and p.partitions == partitions]
    if not cursors:
        return points[0] if points else None
    return Cursor([max(c.after[k] for c in cursors) for k in range(partitions)])


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a stream starts, given what the client asked and what the store keeps.

    Attributes:
        start: the cursor the replay reads after.
        latest: the newest position of every partition.
        oldest: the lower bound of what the store keeps, per partition (events after it are kept).
        requested: the text of what the client asked for, or None for "from now".
        gap: the request is outside what the store keeps, or cannot be resumed at all.
        lost: events the client never got are gone (pruned, or the request cannot be resumed).
    """

    start: Cursor
    latest: Cursor
    oldest: Cursor
    requested: str | None
    gap: bool
    lost: bool


def resolve(requested: Point | None, lows: Sequence[int], highs: Sequence[int]) -> Resume:
    """Decide where a stream starts.

    Args:
        requested: the client's resume point, or None for "from now".
        lows: per partition, the store's lower bound (events after it are kept).
        highs: per partition, the newest position in the store.

    Returns:
        From now when nothing was asked; from ``requested`` when the store still has what follows
        it in every partition; otherwise each partition from its nearest kept bound (``gap`` set;
        ``lost`` too when something before a lower bound, or everything of an unresumable point, is gone).
    """
    latest, oldest = Cursor(highs), Cursor(lows)
    if requested is None:
        return Resume(start=latest.copy(), latest=latest, oldest=oldest, requested=None, gap=False, lost=False)
    text = encode(requested)
    if isinstance(requested, str) or requested.partitions != len(highs):
        return Resume(start=oldest.copy(), latest=latest, oldest=oldest, requested=text, gap=True, lost=True)
    spans = list(zip(requested.after, lows, highs, strict=True))
    lost = any(a < low for a, low, _ in spans)
    gap = lost or any(a > high for a, _, high in spans)
    start = Cursor([low if a < low else high if a > high else a for a, low, high in spans])
    return Resume(start=start, latest=latest, oldest=oldest, requested=text, gap=gap, lost=lost)
