"""A response's head and body leave in one write; a head alone still leaves within the loop turn.

The transport behind :class:`HeldHead` here records the writes it is given (a stand-in for
asyncio's transport interface, not for any part of Threadline); the rest runs a real server
over raw sockets: ``Expect: 100-continue`` (a first write with no second in the same turn)
and keep-alive answers on one connection.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket

from tests.conftest import RunningServer
from tests.realtime.helpers import make_thread
from tests.support import new_user
from threadline.server.coalesce import HeldHead


class Recording(asyncio.Transport):
    """An asyncio transport that keeps what it is asked to write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 1) if name == "peername" else default


def test_the_first_write_goes_out_with_the_second_in_one_call() -> None:
    async def run() -> list[bytes]:
        transport = Recording()
        held = HeldHead(transport, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n")
        assert transport.writes == []
        held.write(b"{}")
        held.write(b"more")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return transport.writes

    assert asyncio.run(run()) == [b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}", b"more"]


def test_a_lone_first_write_leaves_at_the_end_of_the_turn_and_other_calls_pass_through() -> None:
    async def run() -> tuple[list[bytes], list[bytes], object, bool]:
        transport = Recording()
        held = HeldHead(transport, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        before = list(transport.writes)
        await asyncio.sleep(0)  # the turn ends
        after = list(transport.writes)
        return before, after, held.get_extra_info("peername"), held.is_closing()

    before, after, peer, closing = asyncio.run(run())
    assert before == []
    assert after == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    assert peer == ("127.0.0.1", 1)
    assert closing is False


def test_close_sends_what_is_held_first() -> None:
    async def run() -> tuple[list[bytes], bool]:
        transport = Recording()
        held = HeldHead(transport, asyncio.get_running_loop())
        held.write(b"head")
        held.close()
        await asyncio.sleep(0)  # the scheduled release finds nothing left to send
        return transport.writes, transport.closed

    assert asyncio.run(run()) == ([b"head"], True)


def _read(sock: socket.socket, until: bytes) -> bytes:
    data = b""
    while until not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.http_endpoint.removeprefix("http://").split(":")
    return host, int(port)


def test_100_continue_arrives_before_the_body_is_sent(server: RunningServer) -> None:
    user = new_user(server)
    thread_id = make_thread(server, user)
    body = json.dumps({"content": "after continue"}).encode()
    head = (
        f"POST /chat/threads/{thread_id}/messages?api-version=2024-03-07 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {user.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection(_address(server), timeout=10) as sock:
        sock.sendall(head)
        assert _read(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        answer = _read(sock, b"}")
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
    assert re.search(rb'\{"id":"\d+"\}$', answer), answer


def test_keep_alive_answers_arrive_whole_one_after_another(server: RunningServer) -> None:
    with socket.create_connection(_address(server), timeout=10) as sock:
        for _ in range(5):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _read(sock, b'{"status":"ok"}')
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
            assert answer.endswith(b'\r\n\r\n{"status":"ok"}')
