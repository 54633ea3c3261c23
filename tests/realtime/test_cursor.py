"""Resume positions (``realtime/cursor.py``): the one place both protocols read and compare them."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import RunningServer
from tests.support import new_user
from threadline.server.realtime import cursor


def test_parse_takes_64_bit_non_negative_integers_only() -> None:
    assert cursor.parse("0") == 0
    assert cursor.parse("0042") == 42
    assert cursor.parse("9223372036854775807") == 2**63 - 1
    for bad in ("", "-1", "1.5", "9223372036854775808", "²", "\uff11\uff12", "abc", " 1"):
        with pytest.raises(ValueError):
            cursor.parse(bad)


def test_resolve_starts_from_now_from_the_request_or_from_the_nearest_kept_bound() -> None:
    now = cursor.resolve(None, 10, 50)
    assert (now.start, now.latest, now.oldest, now.gap, now.lost) == (50, 50, 11, False, False)
    kept = cursor.resolve(30, 10, 50)
    assert (kept.start, kept.gap, kept.lost) == (30, False, False)
    assert (cursor.resolve(10, 10, 50).start, cursor.resolve(50, 10, 50).gap) == (10, False)
    pruned = cursor.resolve(3, 10, 50)
    assert (pruned.start, pruned.requested, pruned.gap, pruned.lost) == (10, 3, True, True)
    ahead = cursor.resolve(99, 10, 50)
    assert (ahead.start, ahead.gap, ahead.lost) == (50, True, False)


def test_covered_skips_replayed_positions_but_never_typing_indicators() -> None:
    assert cursor.covered(5, 5) and cursor.covered(1, 5)
    assert not cursor.covered(6, 5) and not cursor.covered(0, 5)
    assert cursor.later(5, 3) == 5 and cursor.later(5, 9) == 9
    assert cursor.encode(123) == "123"


def test_a_browser_allocation_ignores_a_cached_pos_that_is_no_position(server: RunningServer) -> None:
    """``pos`` goes through the same parser as ``after``: a non-ASCII digit once reached ``int()`` unguarded."""
    token = new_user(server).token

    def allocate(pos: str | None) -> requests.Response:
        query = {"v": "v4"} if pos is None else {"v": "v4", "pos": pos}
        return requests.post(f"{server.http_endpoint}/trouter/v4/a", params=query,
                             headers={"X-Skypetoken": token}, timeout=10)

    fresh = allocate(None)
    assert fresh.status_code == 200, fresh.text
    now = fresh.json()["connectparams"]["pos"]
    assert now.isdigit()
    for bad in ("\u00b2", "-5", "abc", "1e3", "9" * 30):
        response = allocate(bad)
        assert response.status_code == 200, (bad, response.text)
        assert response.json()["connectparams"]["pos"] == now, bad
    assert allocate("0").json()["connectparams"]["pos"] == "0"
