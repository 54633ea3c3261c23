"""Helpers for the real-time tests: raw WebSocket streams, threads, clients and a cuttable proxy."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from azure.communication.chat import ChatParticipant, ChatThreadClient, CommunicationTokenCredential

from tests.conftest import RunningServer
from tests.support import User, official_chat
from threadline.store import positions

__all__ = ["CutProxy", "RawStream", "advancing", "cursor", "make_thread", "open_stream", "thread_client", "ws_url"]


def cursor(token: str) -> list[int]:
    """The per-partition positions a resume token names (tests look inside; clients never do)."""
    parsed = positions.parse(token)
    assert isinstance(parsed, positions.Cursor), token
    return parsed.after


def advancing(tokens: list[str]) -> bool:
    """Whether each token moves past the one before it: no partition goes back, one goes forward.

    That is "in order, no duplicates" for a stream of stored events.
    """
    cursors = [cursor(t) for t in tokens]
    return all(
        all(x <= y for x, y in zip(a, b, strict=True)) and a != b for a, b in itertools.pairwise(cursors)
    )


def ws_url(server: RunningServer, query: str = "") -> str:
    """The plain-WebSocket URL of the real-time endpoint, with an optional query string."""
    base = server.http_endpoint.replace("http://", "ws://") + "/chat/realtime"
    return f"{base}?{query}" if query else base


def thread_client(server: RunningServer, user: User, thread_id: str) -> ChatThreadClient:
    """The official sync thread client over HTTPS (the official ChatClient does not pass
    ``connection_verify`` on to the thread clients it makes)."""
    return ChatThreadClient(
        server.https_endpoint, CommunicationTokenCredential(user.token), thread_id,
        connection_verify=server.cert_path,
    )


def make_thread(server: RunningServer, creator: User, *others: User, topic: str = "realtime") -> str:
    """Create a thread with the official SDK; return its id."""
    participants = [ChatParticipant(identifier=u.identifier, display_name=f"user-{i}") for i, u in enumerate(others)]
    result = official_chat(server, creator).create_chat_thread(topic, thread_participants=participants)
    assert not result.errors
    return str(result.chat_thread.id)


class RawStream:
    """One raw WebSocket to ``/chat/realtime`` that records every frame with its arrival time."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session = session
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._changed = asyncio.Event()
        self.answer_pings = True
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                frame = json.loads(message.data)
                self.frames.append(frame)
                self.arrivals.append(time.perf_counter())
                if frame["type"] == "ping" and self.answer_pings:
                    await self.ws.send_str('{"type":"pong"}')
                self._changed.set()
            elif message.type == aiohttp.WSMsgType.CLOSE:
                self.close_code, self.close_reason = int(message.data), str(message.extra or "")
                break
            elif message.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        if self.close_code is None:
            self.close_code = self.ws.close_code or 1006
        self._changed.set()

    @property
    def events(self) -> list[dict[str, Any]]:
        """The event frames (not control frames) received so far."""
        return [f for f in self.frames if "data" in f]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """The frames of one type."""
        return [f for f in self.frames if f["type"] == kind]

    async def wait_for(self, predicate: Callable[[RawStream], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds.

        Raises:
            AssertionError: it did not within ``timeout``.
        """
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; frames: {[f['type'] for f in self.frames]}, close {self.close_code}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_type(self, kind: str, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait for ``count`` frames of a type; return them."""
        await self.wait_for(lambda s: len(s.of_type(kind)) >= count, timeout)
        return self.of_type(kind)

    async def wait_closed(self, timeout: float = 10.0) -> int:
        """Wait for the server to close the stream; return the close code."""
        await self.wait_for(lambda s: s.close_code is not None, timeout)
        assert self.close_code is not None
        return self.close_code

    async def close(self) -> None:
        """Close the socket and the session."""
        await self.ws.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)
        await self.session.close()


async def open_stream(url: str, token: str | None = None, *, synced: bool = True, **kwargs: Any) -> RawStream:
    """Open a raw stream (bearer header when a token is given); wait for ``synced`` unless told not to."""
    session = aiohttp.ClientSession()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws = await session.ws_connect(url, headers=headers, autoping=True, **kwargs)
    stream = RawStream(session, ws)
    if synced:
        await stream.wait_type("synced")
    return stream


class CutProxy:
    """A TCP proxy in front of a server whose open connections can be cut at will."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    def cut(self) -> None:
        """Abort every connection open through the proxy."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
