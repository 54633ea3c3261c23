"""Connection lifecycle: token expiry and revocation, slow consumers, retention gaps, shutdown."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import msgspec
import requests
from azure.communication.chat import ChatParticipant

from tests.conftest import RunningServer
from tests.realtime.helpers import RawStream, advancing, make_thread, open_stream, thread_client, ws_url
from tests.support import identity_client, new_user
from threadline.identity.tokens import TokenIssuer, derive_signing_key

NO_THROTTLE = {"THREADLINE_THROTTLE": "off"}


def _issuer(server: RunningServer) -> TokenIssuer:
    """The server's own token issuer, from the key and resource id in its data folder."""
    return TokenIssuer(derive_signing_key(base64.b64decode(server.access_key)), server.resource_id)


def test_expired_token_closes_with_4001_at_expiry(server: RunningServer) -> None:
    user = new_user(server)
    # A 60-minute token issued 59m55s ago: it expires 4-5 seconds from now (issue() truncates to whole
    # seconds), which leaves the stream time to reach ``synced`` on a loaded machine first.
    token, expires = _issuer(server).issue(user.id, ["chat"], 60, 0, now=time.time() - 3600 + 5)

    async def main() -> tuple[RawStream, float]:
        stream = await open_stream(ws_url(server), token)
        code = await stream.wait_closed(10)
        closed_at = time.time()
        await stream.close()
        assert code == 4001
        return stream, closed_at

    stream, closed_at = asyncio.run(main())
    assert stream.close_reason == "The access token has expired."
    assert expires <= closed_at <= expires + 1.5
    assert stream.frames[0]["expiresOn"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))


def test_revoked_token_and_deleted_identity_close_with_4003(server: RunningServer) -> None:
    revoked, deleted = new_user(server), new_user(server)
    identity = identity_client(server)

    async def main() -> tuple[RawStream, RawStream, float, float]:
        r = await open_stream(ws_url(server), revoked.token)
        d = await open_stream(ws_url(server), deleted.token)
        # The clocks start once the revocation / deletion has been made (its HTTPS call returned):
        # what is bounded is how long the server takes to notice it.
        await asyncio.to_thread(identity.revoke_tokens, revoked.identifier)
        start = time.monotonic()
        assert await r.wait_closed(10) == 4003
        revoke_delay = time.monotonic() - start
        await asyncio.to_thread(identity.delete_user, deleted.identifier)
        start = time.monotonic()
        assert await d.wait_closed(10) == 4003
        delete_delay = time.monotonic() - start
        await r.close()
        await d.close()
        return r, d, revoke_delay, delete_delay

    r, d, revoke_delay, delete_delay = asyncio.run(main())
    assert r.close_reason == "The access token was revoked."
    assert d.close_reason == "The identity was deleted."
    assert revoke_delay < 3.5 and delete_delay < 3.5  # checked every 2 s

    async def reconnect() -> tuple[int, str]:
        stream = await open_stream(ws_url(server), revoked.token, synced=False)
        code = await stream.wait_closed()
        await stream.close()
        return code, stream.close_reason

    assert asyncio.run(reconnect()) == (4003, "The access token was revoked or its identity deleted.")


class _StalledSocket:
    """A WebSocket client on a bare socket with a tiny receive buffer, read only when told."""

    def __init__(self, server: RunningServer, token: str, query: str = "") -> None:
        host, port = server.http_endpoint.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        path = "/chat/realtime" + (f"?{query}" if query else "")
        self.sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self) -> tuple[int, bytes]:
        """Read one (unfragmented, unmasked) server frame: (opcode, payload)."""
        first, second = self._exact(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._exact(8))
        return first & 0x0F, self._exact(length)

    def read_until(self, stop: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Read text frames until ``stop(frame)`` holds; return them all."""
        frames: list[dict[str, Any]] = []
        while True:
            opcode, payload = self.frame()
            if opcode == 1:
                frames.append(msgspec.json.decode(payload))
                if stop(frames[-1]):
                    return frames

    def read_to_close(self) -> tuple[list[dict[str, Any]], int, str]:
        """Read every frame up to the close frame: (text frames, close code, reason)."""
        frames: list[dict[str, Any]] = []
        while True:
            opcode, payload = self.frame()
            if opcode == 1:
                frames.append(msgspec.json.decode(payload))
            elif opcode == 8:
                (code,) = struct.unpack("!H", payload[:2])
                return frames, code, payload[2:].decode()


def _slow_closes(server: RunningServer) -> float:
    """How many connections this server has closed as too slow (4008), from /metrics."""
    text = requests.get(f"{server.http_endpoint}/metrics", timeout=5).text
    match = re.search(r'^threadline_realtime_server_closes_total\{code="4008"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_stalled_consumer_does_not_delay_another_and_is_closed_4008(server: RunningServer) -> None:
    alice, bob, slow = new_user(server), new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob, slow)
    alice_thread = thread_client(server, alice, thread_id)
    stalled = _StalledSocket(server, slow.token)
    hello = stalled.read_until(lambda f: f["type"] == "synced")[0]
    count, body = 600, "x" * 20_000  # ~12 MB: more than the socket buffers and the server's queue hold

    too_slow_before = _slow_closes(server)

    async def main() -> tuple[RawStream, list[float], tuple[list[dict[str, Any]], int, str]]:
        fast = await open_stream(ws_url(server), bob.token)
        sent_at: list[float] = []
        for i in range(count):
            await asyncio.to_thread(alice_thread.send_message, f"{i}:{body}")
            sent_at.append(time.perf_counter())
            # Stop as soon as the server has given up on the stalled client: from then on the client
            # has only the server's close grace (5 s) to take the close frame before it is aborted.
            if await asyncio.to_thread(_slow_closes, server) > too_slow_before:
                break
        # So the stalled client starts reading now, in a thread, while the fast stream is checked.
        stalled.sock.settimeout(30)  # a close that never comes fails the test instead of hanging it
        stalled_read = asyncio.create_task(asyncio.to_thread(stalled.read_to_close))
        await fast.wait_for(lambda s: len(s.events) >= len(sent_at), 30)
        await fast.close()
        return fast, sent_at, await stalled_read

    fast, sent_at, (frames, code, reason) = asyncio.run(main())
    count = len(sent_at)
    stalled.sock.close()

    assert [int(f["data"]["message"].split(":")[0]) for f in fast.events] == list(range(count))
    # Pair each message with the arrival of its own event frame (control frames, such as a ``ping``
    # on a long run, are left out), so event i is message i as checked just above.
    event_arrivals = [t for f, t in zip(fast.frames, fast.arrivals, strict=True) if "data" in f]
    lateness = sorted(max(0.0, arrived - sent) for arrived, sent in zip(event_arrivals, sent_at, strict=True))
    assert lateness[len(lateness) // 2] < 0.05, lateness[len(lateness) // 2]
    assert lateness[-1] < 0.5, lateness[-1]

    assert (code, reason) == (4008, "The client reads too slowly; reconnect to resume.")
    got = [f for f in frames if f["type"] == "chatMessageReceived"]
    assert 0 < len(got) < count
    assert [int(f["data"]["message"].split(":")[0]) for f in got] == list(range(len(got)))

    async def resume() -> RawStream:
        stream = await open_stream(ws_url(server, f"after={got[-1]['position']}"), slow.token)
        await stream.close()
        return stream

    rest = asyncio.run(resume())  # resuming from the last frame received brings exactly the rest
    assert [int(f["data"]["message"].split(":")[0]) for f in rest.events] == list(range(len(got), count))
    assert hello["type"] == "hello"


def test_resume_gap_when_the_position_was_pruned(start_server: Callable[..., RunningServer]) -> None:
    server = start_server(env={**NO_THROTTLE, "THREADLINE_EVENT_RETENTION": "1"})
    alice, bob = new_user(server), new_user(server)

    async def before() -> str:
        stream = await open_stream(ws_url(server), bob.token)
        await stream.close()
        return str(stream.frames[0]["position"])

    start = asyncio.run(before())  # a token from before everything below
    thread_id = make_thread(server, alice, bob)
    alice_thread = thread_client(server, alice, thread_id)
    for i in range(3):
        alice_thread.send_message(f"old {i}")

    async def main() -> RawStream:
        deadline = time.monotonic() + 15
        while True:  # the pruner runs every second with a one-second retention
            stream = await open_stream(ws_url(server, f"after={start}"), bob.token)
            # A gap shows once events 1-2 are pruned, but a prune round can fall between the old
            # messages (each has its own created_ms) and leave some to be replayed: wait until the
            # pruning has reached all of them, i.e. the gap comes with nothing replayed.
            if (stream.of_type("resumeGap") and not stream.events) or time.monotonic() > deadline:
                break
            await stream.close()
        await asyncio.to_thread(alice_thread.send_message, "new")
        await stream.wait_type("chatMessageReceived")
        await stream.close()
        return stream

    stream = asyncio.run(main())
    hello, gap, synced = stream.frames[:3]
    assert hello["type"] == "hello" and synced["type"] == "synced"
    assert gap == {"type": "resumeGap", "requested": start, "oldest": hello["oldest"], "position": hello["oldest"]}
    assert advancing([start, hello["oldest"]])  # thread creation and the first messages are gone
    assert hello["position"] == gap["position"]
    (new,) = stream.events
    assert new["data"]["message"] == "new" and advancing([gap["position"], new["position"]])


def test_an_old_integer_position_is_refused_as_resume_impossible(start_server: Callable[..., RunningServer]) -> None:
    """Before event partitions, ``after`` was an integer: such a client is told to refetch, never misread."""
    server = start_server(env=NO_THROTTLE)
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob)
    thread_client(server, alice, thread_id).send_message("kept")

    async def main() -> tuple[RawStream, RawStream]:
        old = await open_stream(ws_url(server, "after=1"), bob.token)  # 1 named an event before
        await old.close()
        now = await open_stream(ws_url(server), bob.token)
        await now.close()
        return old, now

    old, now = asyncio.run(main())
    hello, gap, *_ = old.frames
    assert gap == {"type": "resumeGap", "requested": "1", "oldest": hello["oldest"], "position": hello["oldest"]}
    # it then gets what the server keeps, from the oldest, as for any resume from too far back
    assert [f["type"] for f in old.events] == ["chatThreadCreated", "chatMessageReceived"]
    assert old.frames[-1] == {"type": "synced", "position": now.frames[0]["position"]}


def test_graceful_shutdown_sends_reconnect_then_1012(start_server: Callable[..., RunningServer]) -> None:
    server = start_server(env=NO_THROTTLE)
    alice = new_user(server)

    async def main() -> tuple[RawStream, int]:
        streams = [await open_stream(ws_url(server), alice.token) for _ in range(3)]
        exit_code = await asyncio.to_thread(server.stop)
        for stream in streams:
            await stream.wait_closed(10)
            await stream.close()
        return streams[0], exit_code

    stream, exit_code = asyncio.run(main())
    assert exit_code == 0
    reconnect = stream.frames[-1]
    assert reconnect["type"] == "reconnect" and reconnect["reason"] == "shutdown"
    assert reconnect["position"] == stream.frames[0]["position"]
    assert 250 <= reconnect["retryAfterMs"] <= 2000
    assert stream.close_code == 1012
    assert stream.close_reason == "The server is restarting."


def test_participants_added_at_thread_creation_need_no_reconnect(server: RunningServer) -> None:
    """A user connected before any thread exists gets the events of threads it is added to later."""
    alice, bob = new_user(server), new_user(server)

    async def main() -> RawStream:
        b = await open_stream(ws_url(server), bob.token)
        thread_id = await asyncio.to_thread(make_thread, server, alice)
        client = thread_client(server, alice, thread_id)
        await asyncio.to_thread(client.add_participants, [ChatParticipant(identifier=bob.identifier)])
        await asyncio.to_thread(client.send_message, "welcome")
        await b.wait_type("chatMessageReceived")
        await b.close()
        return b

    b = asyncio.run(main())
    assert [f["type"] for f in b.events] == ["participantsAdded", "chatMessageReceived"]
