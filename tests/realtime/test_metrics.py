"""Open real-time connections show in the Prometheus gauge, and leave it when they close."""

from __future__ import annotations

import asyncio
import re

import requests

from tests.conftest import RunningServer
from tests.realtime.helpers import open_stream, ws_url
from tests.support import new_user


def gauge(server: RunningServer) -> float:
    text = requests.get(f"{server.http_endpoint}/metrics", timeout=5).text
    match = re.search(r"^threadline_realtime_connections (\S+)$", text, re.M)
    assert match is not None, text
    return float(match.group(1))


def test_gauge_counts_open_connections(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def main() -> tuple[float, float, float]:
        before = await asyncio.to_thread(gauge, server)
        a = await open_stream(ws_url(server), alice.token)
        b = await open_stream(ws_url(server), bob.token)
        during = await asyncio.to_thread(gauge, server)
        await a.close()
        await b.close()
        for _ in range(50):  # the server notices the close a moment later
            after = await asyncio.to_thread(gauge, server)
            if after == before:
                break
            await asyncio.sleep(0.05)
        return before, during, after

    before, during, after = asyncio.run(main())
    assert during == before + 2
    assert after == before
