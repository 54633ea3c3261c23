"""The bounded parsers of request input (``threadline.protocol.inputs``) and the wire time format.

Whatever a parser accepts, the formatter writes and the parser reads back the
same instant (whole seconds); whatever it refuses is a 400 naming the field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline._shared.model_base import format_datetime
from threadline.protocol.errors import ChatServiceError
from threadline.protocol.inputs import INT64_MAX, INT64_MIN, bounded_int, check_text, parse_int_text, parse_time_ms
from threadline.protocol.times import MAX_MS, MIN_MS, format_ms, format_precise_ms, parse_iso, to_ms


def refused(target: str) -> pytest.RaisesExc[ChatServiceError]:
    """Expect a 400 naming ``target``."""
    return pytest.raises(ChatServiceError, check=lambda e: (e.status, e.target) == (400, target))


def test_the_range_is_years_1_to_9999_in_utc() -> None:
    assert format_ms(MIN_MS) == "0001-01-01T00:00:00Z"
    assert format_ms(MAX_MS) == "9999-12-31T23:59:59Z"
    assert parse_time_ms("0001-01-01T00:00:00Z", "t") == MIN_MS
    assert parse_time_ms("9999-12-31T23:59:59.999Z", "t") == MAX_MS
    assert parse_time_ms("9999-12-31T23:59:59+14:00", "t") == MAX_MS - 14 * 3600 * 1000 - 999
    for outside in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:01", "10000-01-01T00:00:00Z"):
        with refused("shareHistoryTime"):
            parse_time_ms(outside, "shareHistoryTime")


@pytest.mark.parametrize("bad", ["", "T", "yesterday", "2024-02-30T00:00:00Z", "2024-01-01T00:00:00.²Z",
                                 "2024-01-01T00:00:00+99:00", "x" * 65, 5, 1.5, ["2024-01-01T00:00:00Z"]])
def test_what_is_not_an_iso_date_time_is_refused(bad: object) -> None:
    with refused("startTime"):
        parse_time_ms(bad, "startTime")


def test_absent_values_are_none() -> None:
    assert parse_time_ms(None, "t") is None
    assert parse_int_text(None, "n") is None
    assert parse_int_text("", "n") is None


@settings(max_examples=500, deadline=None)
@given(moment=st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)),
       offset_minutes=st.integers(-14 * 60, 14 * 60))
def test_every_accepted_time_formats_and_reads_back(moment: datetime, offset_minutes: int) -> None:
    local = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    ms = parse_time_ms(local.isoformat(), "t")
    assert ms is not None and MIN_MS <= ms <= MAX_MS
    assert ms == to_ms(local)  # exact: no float rounding
    shown = format_ms(ms)
    assert len(shown) == 20 and shown.endswith("Z")
    assert to_ms(parse_iso(shown)) == ms - ms % 1000  # whole seconds, the same instant
    assert format_precise_ms(ms).endswith(f".{ms % 1000:03d}0000+00:00")
    # the SDK writes what the server reads (four-digit years, UTC)
    assert parse_time_ms(format_datetime(local), "t") == ms


@settings(max_examples=300, deadline=None)
@given(st.integers(-(10**30), 10**30))
def test_integers_are_accepted_exactly_within_64_bits(value: int) -> None:
    if INT64_MIN <= value <= INT64_MAX:
        assert parse_int_text(str(value), "skip") == value
        assert bounded_int(value, "skip") == value
    else:
        with refused("skip"):
            parse_int_text(str(value), "skip")
        with refused("skip"):
            bounded_int(value, "skip")


@pytest.mark.parametrize("text", ["²", "\u0663", "1_000", " 1", "1 ", "0x10", "1e3", "1.0", "--1", "+", "9" * 5000])
def test_only_ascii_decimal_integers_are_read(text: str) -> None:
    with refused("maxPageSize"):
        parse_int_text(text, "maxPageSize")


def test_narrower_bounds_and_non_integers() -> None:
    assert bounded_int(90, "days", minimum=1, maximum=90) == 90
    for bad in (0, 91, True, 1.0, "5", None):
        with refused("days"):
            bounded_int(bad, "days", minimum=1, maximum=90)


def test_texts_are_bounded_and_nul_free() -> None:
    assert check_text("a" * 256, "id", 256) == "a" * 256
    with refused("id"):
        check_text("a" * 257, "id", 256)
    with refused("id"):
        check_text("a\x00", "id", 256)


def test_a_time_outside_the_range_already_stored_is_shown_clamped() -> None:
    assert format_ms(MAX_MS + 10**12) == "9999-12-31T23:59:59Z"
    assert format_ms(MIN_MS - 10**12) == "0001-01-01T00:00:00Z"
    assert format_ms(2**63 - 1) == "9999-12-31T23:59:59Z"


def test_the_sdk_writes_four_digit_years_in_utc() -> None:
    assert format_datetime(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000000Z"
    assert format_datetime(datetime(999, 6, 1, 12, tzinfo=timezone(timedelta(hours=2)))) == \
        "0999-06-01T10:00:00.000000Z"
