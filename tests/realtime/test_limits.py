"""Real-time limits: streams per user, send queues bounded in bytes, close reasons that fit a close frame.

A real server per engine with a cap of 2 streams per user and a 64 KiB send
queue (set through ``THREADLINE_*`` variables), reached over raw WebSockets
on loopback.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests

from tests.conftest import ENGINES, RunningServer, serving
from tests.realtime.helpers import RawStream, make_thread, open_stream, thread_client, ws_url
from tests.realtime.test_lifecycle import _StalledSocket
from tests.reliability.conftest import drain
from tests.support import new_user
from threadline.server.wsclose import MAX_CLOSE_REASON_BYTES, fit_close_reason

PER_USER = 2
QUEUE_BYTES = 64 * 1024
ENV = {"THREADLINE_REALTIME_PER_USER": str(PER_USER), "THREADLINE_REALTIME_QUEUE_BYTES": str(QUEUE_BYTES),
       "THREADLINE_THROTTLE": "off"}


@pytest.fixture(scope="module", params=ENGINES)
def capped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with small real-time limits, on each engine."""
    with serving(request.param, tmp_path_factory.mktemp(f"rt-{request.param}") / "data", env=ENV) as server:
        drain(server)
        yield server


def _metric(server: RunningServer, sample: str) -> float:
    text = requests.get(f"{server.http_endpoint}/metrics", timeout=5).text
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_user_holds_at_most_the_capped_number_of_streams(capped: RunningServer) -> None:
    alice, bob = new_user(capped), new_user(capped)

    async def main() -> None:
        held = [await open_stream(ws_url(capped), alice.token) for _ in range(PER_USER)]
        extra = await open_stream(ws_url(capped), alice.token, synced=False)
        assert await extra.wait_closed() == 4029
        assert extra.close_reason == (
            f"This user holds {PER_USER} real-time connections already; close one first.")
        assert not extra.frames  # refused before anything was sent
        await extra.close()
        other = await open_stream(ws_url(capped), bob.token)  # another user is not affected
        assert other.of_type("hello")
        await held[0].close()
        # Its place is free once the server has seen the close: a new stream then gets in.
        again: RawStream | None = None
        for _ in range(100):
            again = await open_stream(ws_url(capped), alice.token, synced=False)
            await again.wait_for(lambda s: bool(s.frames) or s.close_code is not None)
            if again.of_type("hello"):
                break
            assert again.close_code == 4029
            await again.close()
            await asyncio.sleep(0.05)
        assert again is not None and again.of_type("hello")
        for stream in (*held[1:], other, again):
            await stream.close()

    asyncio.run(main())
    assert _metric(capped, 'threadline_realtime_server_closes_total{code="4029"}') >= 1


@pytest.mark.parametrize("version", ["9" * 300, "é" * 150, "😀" * 60], ids=["ascii", "2-byte", "4-byte"])
def test_an_over_long_close_reason_is_cut_to_fit_and_keeps_its_code(capped: RunningServer, version: str) -> None:
    alice = new_user(capped)

    async def main() -> RawStream:
        stream = await open_stream(ws_url(capped, f"api-version={quote(version)}"), alice.token, synced=False)
        await stream.wait_closed()
        await stream.close()
        return stream

    stream = asyncio.run(main())
    assert stream.close_code == 4000  # not an abnormal 1006
    raw = stream.close_reason.encode()
    assert 100 <= len(raw) <= 123
    assert stream.close_reason.startswith("api-version " + version[:5])
    assert stream.close_reason.endswith("…")


def test_a_stalled_stream_holds_at_most_the_queue_bound_in_bytes(capped: RunningServer) -> None:
    alice, slow = new_user(capped), new_user(capped)
    thread_id = make_thread(capped, alice, slow)
    sender = thread_client(capped, alice, thread_id)
    stalled = _StalledSocket(capped, slow.token)
    stalled.read_until(lambda f: f["type"] == "synced")
    content = "😀" * 7000  # 28,000 UTF-8 bytes, but only 7,000 characters
    closes = 'threadline_realtime_server_closes_total{code="4008"}'
    before = _metric(capped, closes)
    peak = 0.0
    try:
        for _ in range(400):  # enough to fill the socket buffers and then the queue; stops at the close
            sender.send_message(content)
            peak = max(peak, _metric(capped, "threadline_realtime_queued_bytes"))
            if _metric(capped, closes) > before:
                break
        else:
            raise AssertionError("the stalled stream was never closed as too slow")
    finally:
        stalled.sock.close()
    # The queue filled up (it held more than one frame) but never beyond its bound in bytes; counting
    # characters, it would have taken about four times as much.
    assert QUEUE_BYTES - 28_500 < peak <= QUEUE_BYTES


@pytest.mark.parametrize(("reason", "expected"), [
    ("short", "short"),
    ("a" * 123, "a" * 123),
    ("a" * 124, "a" * 120 + "…"),
    ("é" * 62, "é" * 60 + "…"),  # 124 bytes: cut between characters, never inside one
    ("😀" * 31, "😀" * 30 + "…"),
])
def test_close_reasons_are_cut_at_character_boundaries(reason: str, expected: str) -> None:
    fitted = fit_close_reason(reason)
    assert fitted == expected
    assert len(fitted.encode()) <= MAX_CLOSE_REASON_BYTES
