"""A small Trouter (socket.io 0.9) client for protocol tests, speaking what the browser SDK speaks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import requests

from tests.conftest import RunningServer
from threadline.store import positions

__all__ = ["TrouterClient", "ahead", "allocate", "connect", "connected_args", "metric"]


async def allocate(session: aiohttp.ClientSession, server: RunningServer, token: str,
                   params: dict[str, str] | None = None) -> dict[str, Any]:
    """``POST /trouter/v4/a`` as the client does (cached params appended on a reconnect)."""
    query = urlencode({**(params or {}), "v": "v4"})
    async with session.post(f"{server.http_endpoint}/trouter/v4/a?{query}",
                            headers={"X-Skypetoken": token, "Content-Type": "text/plain"}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["content-type"].startswith("application/json")
        result: dict[str, Any] = await response.json()
        return result


async def handshake(session: aiohttp.ClientSession, server: RunningServer, token: str,
                    params: dict[str, str]) -> str:
    """The socket.io handshake; returns the sid."""
    query = urlencode({**params, "v": "v4", "epid": "e1", "t": str(int(time.time() * 1000))})
    async with session.get(f"{server.http_endpoint}/socket.io/1/?{query}", headers={"X-Skypetoken": token}) as r:
        text = await r.text()
        assert r.status == 200, text
    sid, heartbeat, close, transports = text.split(":")
    assert (heartbeat, close) == ("60", "60")
    assert transports.split(",") == ["websocket", "xhr-polling"]
    return sid


class TrouterClient:
    """One WebSocket session that records packets and answers notifications like the SDK."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 allocation: dict[str, Any]) -> None:
        self.session = session
        self.ws = ws
        self.allocation = allocation
        self.packets: list[str] = []
        self.notifications: list[dict[str, Any]] = []
        self.answer = True
        self.closed = False
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            text = str(message.data)
            self.packets.append(text)
            if text.startswith("3:::"):
                request = json.loads(text[4:])
                self.notifications.append(json.loads(request["body"]))
                if self.answer:
                    await self.ws.send_str("3:::" + json.dumps({"id": request["id"], "status": 200, "headers": {},
                                                                "body": ""}))
            elif text == "2::":
                await self.ws.send_str("2::")
            self._changed.set()
        self.closed = True
        self._changed.set()

    async def wait_for(self, predicate: Callable[[TrouterClient], bool], timeout: float = 15.0) -> None:
        """Wait until ``predicate`` holds (or fail after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; packets: {self.packets[-5:]}"
            self._changed.clear()
            if predicate(self):
                return
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    def bodies(self, event_id: int) -> list[dict[str, Any]]:
        """The notification bodies with this ``eventId``."""
        return [n for n in self.notifications if n["eventId"] == event_id]

    async def close(self) -> None:
        """Leave as the SDK does: ``0::`` then close."""
        if not self.ws.closed:
            await self.ws.send_str("0::")
            await self.ws.close()
        await self._task


async def connect(session: aiohttp.ClientSession, server: RunningServer, token: str,
                  params: dict[str, str] | None = None) -> TrouterClient:
    """Allocate, handshake and open the WebSocket; wait for ``1::`` and ``trouter.connected``."""
    allocation = await allocate(session, server, token, params)
    connect_params = {k: str(v) for k, v in allocation["connectparams"].items()}
    sid = await handshake(session, server, token, connect_params)
    socket_url = allocation["socketio"].replace("http://", "ws://")
    ws = await session.ws_connect(f"{socket_url}socket.io/1/websocket/{sid}?{urlencode(connect_params)}")
    client = TrouterClient(session, ws, allocation)
    await client.wait_for(lambda c: len(c.packets) >= 2)
    assert client.packets[0] == "1::"
    assert client.packets[1].startswith('5:::{"name":"trouter.connected"')
    return client


def connected_args(client: object) -> list[dict[str, object]]:
    """The arguments of every ``trouter.connected`` the client received."""
    packets: list[str] = client.packets  # type: ignore[attr-defined]
    return [json.loads(p[4:])["args"][0] for p in packets if p.startswith('5:::{"name":"trouter.connected"')]


def ahead(new: str, old: str) -> bool:
    """Whether resume token ``new`` is past ``old`` (no partition behind, one ahead)."""
    a, b = positions.parse(new), positions.parse(old)
    assert isinstance(a, positions.Cursor) and isinstance(b, positions.Cursor)
    return a != b and all(x >= y for x, y in zip(a.after, b.after, strict=True))


def metric(server: RunningServer, name: str) -> float:
    """One sample of the server's ``/metrics`` (0 when absent)."""
    for line in requests.get(f"{server.http_endpoint}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
