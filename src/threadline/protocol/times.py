"""Timestamps as ACS writes and reads them.

The service stores integer epoch milliseconds. On the wire it writes
``YYYY-MM-DDTHH:MM:SSZ`` (seconds precision, as the real service does) and it
reads any ISO 8601 date-time with an offset or ``Z``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

__all__ = ["format_ms", "format_precise_ms", "now_ms", "parse_iso", "to_ms"]


def now_ms() -> int:
    """Return the current time as integer epoch milliseconds."""
    return time.time_ns() // 1_000_000


def format_ms(ms: int) -> str:
    """Format epoch milliseconds as ``2024-05-06T07:08:09Z``."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_precise_ms(ms: int) -> str:
    """Format epoch milliseconds as .NET does: ``2024-05-06T07:08:09.1230000+00:00``."""
    whole = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{ms % 1000:03d}0000+00:00"


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
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest}" if digits else head + rest
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def to_ms(moment: datetime) -> int:
    """Convert an aware (or UTC-naive) datetime to epoch milliseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
