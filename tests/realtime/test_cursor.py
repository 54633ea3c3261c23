"""Resume tokens (``realtime/cursor.py``): the one place both protocols read, compare and write them."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import RunningServer
from tests.support import new_user
from threadline.server.realtime import cursor


def test_parse_takes_tokens_and_keeps_old_integers_as_sent() -> None:
    token = cursor.parse("p1.0.a")
    assert isinstance(token, cursor.Cursor)
    assert token.after == [3, 1, 32] and token.token() == "p1.0.a"
    assert cursor.parse("0042") == "0042" and cursor.parse("9223372036854775807") == "9223372036854775807"
    for bad in ("", "-1", "1.5", "p", "p1..2", "pG", "P1", "\u00b2", "\uff11\uff12", "abc", " 1", "p" + "1." * 300):
        with pytest.raises(ValueError):
            cursor.parse(bad)


def test_resolve_starts_from_now_from_the_request_or_from_the_nearest_kept_bound() -> None:
    lows, highs = [20, 11], [100, 51]  # two partitions: positions 2n and 2n+1
    now = cursor.resolve(None, lows, highs)
    assert (now.start.after, now.latest.after, now.oldest.after, now.gap, now.lost) == (
        [100, 51], [100, 51], [20, 11], False, False)
    assert now.requested is None
    kept = cursor.resolve(cursor.Cursor([60, 31]), lows, highs)
    assert (kept.start.after, kept.requested, kept.gap, kept.lost) == ([60, 31], "p1e.f", False, False)
    edges = cursor.resolve(cursor.Cursor([20, 51]), lows, highs)
    assert (edges.start.after, edges.gap) == ([20, 51], False)
    pruned = cursor.resolve(cursor.Cursor([6, 31]), lows, highs)
    assert (pruned.start.after, pruned.requested, pruned.gap, pruned.lost) == ([20, 31], "p3.f", True, True)
    ahead = cursor.resolve(cursor.Cursor([60, 99]), lows, highs)
    assert (ahead.start.after, ahead.gap, ahead.lost) == ([60, 51], True, False)
    for unresumable in ("42", cursor.Cursor([9])):  # an old integer; another partitioning
        old = cursor.resolve(unresumable, lows, highs)
        assert (old.start.after, old.gap, old.lost) == ([20, 11], True, True)
        assert old.requested == cursor.encode(unresumable)


def test_covered_skips_replayed_positions_but_never_typing_indicators() -> None:
    through = cursor.Cursor([10, 5])
    assert cursor.covered(10, through) and cursor.covered(5, through) and cursor.covered(2, through)
    assert not cursor.covered(12, through) and not cursor.covered(7, through) and not cursor.covered(0, through)
    assert not cursor.covered(3, None)  # nothing is covered before the replay ended
    sent = cursor.Cursor([10, 5])
    assert cursor.later(sent, 3) is sent and sent.after == [10, 5]
    assert cursor.later(sent, 9).after == [10, 9] and cursor.later(None, 9) is None  # type: ignore[union-attr]
    assert cursor.encode(sent) == "p5.4" and cursor.encode("17") == "17" and cursor.encode(None) is None


def test_furthest_merges_partition_by_partition_and_keeps_an_unresumable_point() -> None:
    merged = cursor.furthest([cursor.Cursor([10, 5]), "7", cursor.Cursor([4, 9])], 2)
    assert isinstance(merged, cursor.Cursor) and merged.after == [10, 9]
    assert cursor.furthest(["7", cursor.Cursor([3])], 2) == "7"
    assert cursor.furthest([], 2) is None


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
    assert isinstance(cursor.parse(now), cursor.Cursor)
    for bad in ("\u00b2", "-5", "abc", "1e3", "p-1", "pz"):
        response = allocate(bad)
        assert response.status_code == 200, (bad, response.text)
        assert response.json()["connectparams"]["pos"] == now, bad
    assert allocate("0").json()["connectparams"]["pos"] == "0"  # an old integer: kept, so the loss is reported
