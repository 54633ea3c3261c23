"""Reading what clients send, within bounds: times, integers, texts.

Every value a request carries is read through these helpers, so that what the
service accepts is also what both engines can store and every later read can
format. A value outside its bounds is refused with ``400 BadRequest`` naming
the field (``target``), never let through to fail later as a 500.

Reuse them for any new request field::

    days = bounded_int(policy.get("deleteThreadAfterDays"), "retentionPolicy.deleteThreadAfterDays",
                       minimum=1, maximum=90)
    share_ms = parse_time_ms(participant.share_history_time, "shareHistoryTime")
    size = parse_int_text(request.query_params.get("maxPageSize"), "maxPageSize")

The bounds (documented in ``docs/limits.md``):

* times: ISO 8601 with ``Z`` or an offset, between 0001-01-01T00:00:00Z and
  9999-12-31T23:59:59.999Z once converted to UTC (:data:`~.times.MIN_MS`, :data:`~.times.MAX_MS`);
* integers: ASCII decimal digits (an optional sign), within a signed 64-bit
  integer (the column type of both engines) unless narrower bounds are given;
* texts: no NUL (PostgreSQL cannot store it) and at most a given number of characters.
"""

from __future__ import annotations

import re

from .errors import ChatServiceError, ErrorKind
from .times import MAX_MS, MIN_MS, format_ms, parse_iso, to_ms

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_CURSOR_CHARS",
    "MAX_ID_CHARS",
    "MAX_QUERY_CHARS",
    "MAX_REQUEST_ID_CHARS",
    "bounded_int",
    "check_text",
    "parse_int_text",
    "parse_time_ms",
]

#: The range of a signed 64-bit integer: ``INTEGER`` in SQLite, ``BIGINT`` in PostgreSQL.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Longest id accepted in a path or body (thread, message, user raw ids). Ours are under 100.
MAX_ID_CHARS = 256
#: Longest continuation token (``syncState``) accepted; ours are under 150.
MAX_CURSOR_CHARS = 512
#: Longest value of any other query parameter (``startTime``, ``api-version``...).
MAX_QUERY_CHARS = 256
#: Longest ``repeatability-request-id`` / ``x-ms-client-request-id`` (a GUID is 36).
MAX_REQUEST_ID_CHARS = 256

_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII only: str.isdigit() also takes "²" and "٣"
_TIME_CHARS = 64  # longer than any ISO 8601 date-time needs


def invalid(message: str, target: str) -> ChatServiceError:
    """A ``400 BadRequest`` naming the field at fault."""
    return ChatServiceError(ErrorKind.INVALID, message, target=target)


def check_text(value: str, target: str, max_chars: int) -> str:
    """Return ``value`` when it holds no NUL and at most ``max_chars`` characters.

    Args:
        value: the text a client sent.
        target: the field's wire name, reported in the error.
        max_chars: the longest accepted value.

    Returns:
        The value, unchanged.

    Raises:
        ChatServiceError: 400 naming ``target``.
    """
    if len(value) > max_chars:
        raise invalid(f"{target} must not exceed {max_chars} characters.", target)
    if "\x00" in value:
        raise invalid("Strings must not contain the NUL character (U+0000).", target)
    return value


def bounded_int(
    value: object, target: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int:
    """Return a JSON integer within ``[minimum, maximum]`` (a boolean is not an integer).

    Args:
        value: the decoded JSON value.
        target: the field's wire name, reported in the error.
        minimum: the smallest accepted value.
        maximum: the largest accepted value.

    Returns:
        The integer.

    Raises:
        ChatServiceError: 400 naming ``target`` for a non-integer or a value out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{target} must be an integer.", target)
    if not minimum <= value <= maximum:
        raise invalid(f"{target} must be between {minimum} and {maximum}.", target)
    return value


def parse_int_text(
    text: str | None, target: str, *, minimum: int = INT64_MIN, maximum: int = INT64_MAX
) -> int | None:
    """Read an optional decimal integer from text (a query parameter, a cursor).

    Args:
        text: the text; None or empty means absent.
        target: the field's wire name, reported in the error.
        minimum: the smallest accepted value.
        maximum: the largest accepted value.

    Returns:
        The integer, or None when absent.

    Raises:
        ChatServiceError: 400 naming ``target`` unless the text is ASCII digits (with an
            optional sign) whose value is within the bounds.
    """
    if not text:
        return None
    if _INTEGER.fullmatch(text) is None:
        raise invalid(f"{target} must be an integer.", target)
    if len(text.lstrip("+-").lstrip("0")) > 19:  # past any 64-bit value: do not convert megabytes of digits
        raise invalid(f"{target} must be between {minimum} and {maximum}.", target)
    return bounded_int(int(text), target, minimum=minimum, maximum=maximum)


def parse_time_ms(text: object, target: str) -> int | None:
    """Read an optional ISO 8601 date-time into epoch milliseconds, within the accepted range.

    An accepted time can be stored by both engines and formatted by every read
    (see :mod:`threadline.protocol.times`); a naive time is taken as UTC.

    Args:
        text: the value a client sent; None means absent.
        target: the field's wire name, reported in the error.

    Returns:
        Epoch milliseconds in ``[MIN_MS, MAX_MS]``, or None when absent.

    Raises:
        ChatServiceError: 400 naming ``target`` for anything else.
    """
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > _TIME_CHARS:
        raise invalid(f"{target} must be an ISO 8601 date-time.", target)
    try:
        ms = to_ms(parse_iso(text))
    except (ValueError, OverflowError):
        raise invalid(f"{target} must be an ISO 8601 date-time.", target) from None
    if not MIN_MS <= ms <= MAX_MS:
        raise invalid(
            f"{target} must be between {format_ms(MIN_MS)} and {format_ms(MAX_MS)} in UTC.", target
        )
    return ms
