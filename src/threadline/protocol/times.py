"""Timestamps as ACS writes and reads them.

The service stores integer epoch milliseconds. On the wire it writes
``YYYY-MM-DDTHH:MM:SSZ`` (seconds precision, as the real service does) and it
reads any ISO 8601 date-time with an offset or ``Z``.

Every time the service accepts lies in ``[MIN_MS, MAX_MS]``: years 0001 to
9999 in UTC, the range of Python's ``datetime`` and of the four-digit year the
wire format writes. Both engines store the value as a signed 64-bit integer,
which holds that range with room to spare, so an accepted time can always be
stored, read back and formatted.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta

__all__ = ["MAX_MS", "MIN_MS", "format_ms", "format_precise_ms", "now_ms", "parse_iso", "to_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_MS = timedelta(milliseconds=1)

#: The earliest accepted time: 0001-01-01T00:00:00Z, in epoch milliseconds.
MIN_MS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // _ONE_MS
#: The latest accepted time: 9999-12-31T23:59:59.999Z, in epoch milliseconds.
MAX_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - _EPOCH) // _ONE_MS


def now_ms() -> int:
    """Return the current time as integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


def _utc_seconds(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of the UTC second holding ``ms``, clamped to the accepted range.

    Clamping only matters for rows written before the range was enforced: whatever a
    database holds, a read can always format it. ``isoformat`` always writes four year digits.
    """
    return _second_text(min(max(ms, MIN_MS), MAX_MS) // 1000)


@functools.lru_cache(maxsize=4096)
def _second_text(seconds: int) -> str:
    """The text of one epoch second (remembered: a busy server formats the same few seconds again and again)."""
    return (_NAIVE_EPOCH + timedelta(seconds=seconds)).isoformat()[:19]


def format_ms(ms: int) -> str:
    """Format epoch milliseconds as ``2024-05-06T07:08:09Z`` (always a four-digit year)."""
    return _utc_seconds(ms) + "Z"


def format_precise_ms(ms: int) -> str:
    """Format epoch milliseconds as .NET does: ``2024-05-06T07:08:09.1230000+00:00``."""
    return f"{_utc_seconds(ms)}.{ms % 1000:03d}0000+00:00"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 date-time; a naive one is taken as UTC.

    Raises:
        ValueError: the text is not an ISO 8601 date-time.
    """
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError(f"{text!r} is not an ISO 8601 date-time")
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    # Python reads at most 6 fractional digits; .NET writes 7.
    head, dot, rest = value.partition(".")
    if dot:
        digits = ""
        while rest and rest[0] in "0123456789":
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}" if digits else head + rest
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def to_ms(moment: datetime) -> int:
    """Convert an aware (or UTC-naive) datetime to epoch milliseconds, exactly (no float rounding).

    Raises:
        OverflowError: the moment is outside what ``datetime`` arithmetic can hold.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE_MS
