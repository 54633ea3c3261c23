"""Slow and greedy HTTP clients: head and body deadlines, the connection cap, ACS-shaped refusals.

A real server per engine (SQLite; PostgreSQL with the Redis hub) with small
limits, so the tests reach them with a few dozen sockets: 2-second deadlines,
a cap of 40 connections, a 2 KiB request target and an 8 KiB head. Every
socket is raw and on loopback; every wait is for the condition asserted, with
a bound.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import ENGINES, RunningServer, serving
from tests.realtime.helpers import make_thread
from tests.reliability.conftest import drain
from tests.support import new_user

CAP = 40
DEADLINE = 2.0
#: Set through the environment (the flags are checked in test_connection_flags_reach_the_settings).
ENV = {"THREADLINE_HEADER_TIMEOUT": "2", "THREADLINE_BODY_TIMEOUT": "2", "THREADLINE_MAX_CONNECTIONS": str(CAP),
       "THREADLINE_MAX_REQUEST_LINE": "2048", "THREADLINE_MAX_HEADER_BYTES": "8192", "THREADLINE_THROTTLE": "off"}


@pytest.fixture(scope="module", params=ENGINES)
def guarded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with small connection limits, throttling off, on each engine."""
    data: Path = tmp_path_factory.mktemp(f"guarded-{request.param}") / "data"
    with serving(request.param, data, env=ENV) as server:
        drain(server)
        yield server


def _address(server: RunningServer) -> tuple[str, int]:
    host, port = server.http_endpoint.removeprefix("http://").split(":")
    return host, int(port)


def _connect(server: RunningServer, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(_address(server), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def _read_response(sock: socket.socket, data: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Read one response to its end (``data``: its first bytes, when already received)."""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"(?im)^content-length: (\d+)", head)
            if length and len(body) >= int(length.group(1)):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:200]
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _assert_acs(status: int, headers: dict[str, str], body: bytes, want_status: int, code: str) -> None:
    assert status == want_status, (status, body)
    assert headers["x-ms-error-code"] == code
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]


def _metrics(server: RunningServer) -> str:
    return requests.get(f"{server.http_endpoint}/metrics", timeout=5).text


def _sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the socket (reads until EOF or the socket's timeout)."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


# -- deadlines -----------------------------------------------------------------------------------------


def test_a_silent_connection_is_closed_after_the_head_deadline(guarded: RunningServer) -> None:
    sock = _connect(guarded, timeout=DEADLINE + 8)
    started = time.monotonic()
    assert _closed_by_server(sock), "the server held a connection that never sent a byte"
    assert DEADLINE - 0.5 <= time.monotonic() - started < DEADLINE + 8
    sock.close()


def test_a_trickled_head_gets_408_within_the_deadline_not_per_byte(guarded: RunningServer) -> None:
    before = _sample(_metrics(guarded), "threadline_http_rejected_total", '{reason="header_timeout"}')
    sock = _connect(guarded)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    # One header line every 0.3 s: each byte is "recent", so only a deadline on the whole head helps.
    sock.settimeout(0.3)
    answer = b""
    for _ in range(100):  # at most 30 s
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
        try:
            answer += sock.recv(65536)
            if answer:
                break
        except TimeoutError:
            continue
    elapsed = time.monotonic() - started
    sock.settimeout(5)
    status, headers, body = _read_response(sock, answer)
    sock.close()
    _assert_acs(status, headers, body, 408, "RequestTimeout")
    assert elapsed < DEADLINE + 3
    after = _sample(_metrics(guarded), "threadline_http_rejected_total", '{reason="header_timeout"}')
    assert after == before + 1


def test_a_keep_alive_connection_gets_the_same_head_deadline_for_its_next_request(guarded: RunningServer) -> None:
    sock = _connect(guarded)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = _read_response(sock)
    assert (status, body) == (200, b'{"status":"ok"}')
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the next request's head never ends
    started = time.monotonic()
    status, headers, body = _read_response(sock)
    sock.close()
    _assert_acs(status, headers, body, 408, "RequestTimeout")
    assert DEADLINE - 0.5 <= time.monotonic() - started < DEADLINE + 5


def test_a_slow_body_gets_408_and_writes_nothing(guarded: RunningServer) -> None:
    alice = new_user(guarded)
    thread_id = make_thread(guarded, alice)
    before = _metrics(guarded)
    sock = _connect(guarded)
    body = json.dumps({"content": "never complete", "type": "text"}).encode()
    sock.sendall(
        f"POST /chat/threads/{thread_id}/messages?api-version=2021-09-07 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {alice.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10]
    )
    started = time.monotonic()
    status, headers, answer = _read_response(sock)
    sock.close()
    _assert_acs(status, headers, answer, 408, "RequestTimeout")
    assert DEADLINE - 0.5 <= time.monotonic() - started < DEADLINE + 5

    after = _metrics(guarded)
    assert _sample(after, "threadline_http_rejected_total", '{reason="body_timeout"}') == \
        _sample(before, "threadline_http_rejected_total", '{reason="body_timeout"}') + 1
    assert _sample(after, "threadline_requests_total", '{operation="send_message",status="408"}') == \
        _sample(before, "threadline_requests_total", '{operation="send_message",status="408"}') + 1
    assert 'status="500"' not in after
    listed = requests.get(f"{guarded.http_endpoint}/chat/threads/{thread_id}/messages?api-version=2021-09-07",
                          headers={"Authorization": f"Bearer {alice.token}"}, timeout=10).json()
    assert not [m for m in listed["value"] if m["type"] == "text"]


# -- the connection cap --------------------------------------------------------------------------------


def test_a_slowloris_flood_is_held_to_the_cap_and_health_still_answers(guarded: RunningServer) -> None:
    shed_before = _sample(_metrics(guarded), "threadline_connections_shed_total")
    flood = []
    try:
        for _ in range(CAP + 20):
            sock = _connect(guarded, timeout=0.2)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            flood.append(sock)
        for _ in range(5):
            answer = requests.get(f"{guarded.http_endpoint}/health", timeout=5)
            assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        text = _metrics(guarded)
        assert _sample(text, "threadline_connections_open") <= CAP
        assert _sample(text, "threadline_connections_shed_total") >= shed_before + 20
        # The oldest of the flood made room: they were closed by the server, long before their deadline.
        assert _closed_by_server(flood[0])
    finally:
        for sock in flood:
            sock.close()


def _https_address(server: RunningServer) -> tuple[str, int]:
    host, port = server.https_endpoint.removeprefix("https://").split(":")
    return host, int(port)


def test_tls_handshakes_that_never_finish_are_held_to_the_cap(guarded: RunningServer) -> None:
    """A TCP connection on the HTTPS port holds a place from its accept, while its handshake runs."""
    shed_before = _sample(_metrics(guarded), "threadline_connections_shed_total")
    flood = []
    try:
        for n in range(CAP + 20):  # connect and say nothing (half of them a bare TLS record header)
            sock = socket.create_connection(_https_address(guarded), timeout=DEADLINE + 8)
            if n % 2:
                sock.sendall(b"\x16\x03\x01\x02\x00")
            flood.append(sock)
        _wait(lambda: _sample(_metrics(guarded), "threadline_connections_shed_total") >= shed_before + 20, 10,
              "the oldest handshakes to be shed")
        assert _sample(_metrics(guarded), "threadline_connections_open") <= CAP
        assert _closed_by_server(flood[0])  # shed long before any deadline
        answer = requests.get(f"{guarded.https_endpoint}/health", verify=guarded.cert_path, timeout=5)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        # The newest were not shed: the handshake deadline (the head's) closes them.
        started = time.monotonic()
        assert _closed_by_server(flood[-1]), "a handshake that never finished was held past the head deadline"
        assert time.monotonic() - started < DEADLINE + 8
    finally:
        for sock in flood:
            sock.close()


def test_a_tls_connection_takes_its_handshakes_place_and_releases_it(guarded: RunningServer) -> None:
    """After the handshake the TLS connection holds the TCP connection's place: one, released at close."""
    def open_count() -> float:
        return _sample(_metrics(guarded), "threadline_connections_open")

    _wait(lambda: open_count() == 1, 10, "only the scrape's own connection to be open")
    with requests.Session() as session:
        for _ in range(3):  # one keep-alive TLS connection
            assert session.get(f"{guarded.https_endpoint}/health", verify=guarded.cert_path, timeout=5).ok
        assert open_count() == 2
    _wait(lambda: open_count() == 1, 10, "the TLS connection's place to be released")


def test_beyond_the_cap_with_every_connection_busy_the_answer_is_503_acs(guarded: RunningServer) -> None:
    alice = new_user(guarded)
    refused_before = _sample(_metrics(guarded), "threadline_connections_refused_total")
    busy = []
    try:
        for _ in range(CAP):  # authenticated requests whose bodies never come: busy until their deadline
            sock = _connect(guarded)
            sock.sendall(f"POST /chat/threads?api-version=2021-09-07 HTTP/1.1\r\nHost: x\r\n"
                         f"Authorization: Bearer {alice.token}\r\nContent-Length: 100\r\n\r\n{{".encode())
            busy.append(sock)
        probe = _connect(guarded)
        probe.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = _read_response(probe)
        probe.close()
        _assert_acs(status, headers, body, 503, "ServiceUnavailable")
        assert headers["retry-after"] == "1"
    finally:
        for sock in busy:
            sock.close()
    _wait(lambda: requests.get(f"{guarded.http_endpoint}/health", timeout=5).status_code == 200, 15, "health")
    assert _sample(_metrics(guarded), "threadline_connections_refused_total") >= refused_before + 1


# -- heads the server will not take ------------------------------------------------------------------


@pytest.mark.parametrize(("request_bytes", "status", "code", "reason"), [
    (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "RequestUriTooLong", "uri_too_long"),
    (b"GET /health?x=" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "RequestUriTooLong", "uri_too_long"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431,
     "RequestHeaderFieldsTooLarge", "headers_too_large"),
    (b"NOT HTTP AT ALL\r\n\r\n", 400, "BadRequest", "malformed"),
])
def test_heads_the_server_refuses_get_the_acs_body(
    guarded: RunningServer, request_bytes: bytes, status: int, code: str, reason: str,
) -> None:
    before = _sample(_metrics(guarded), "threadline_http_rejected_total", f'{{reason="{reason}"}}')
    sock = _connect(guarded)
    sock.sendall(request_bytes)
    got = _read_response(sock)
    sock.close()
    _assert_acs(*got, status, code)
    assert _sample(_metrics(guarded), "threadline_http_rejected_total", f'{{reason="{reason}"}}') == before + 1


def test_405_carries_the_error_code_header_and_allow(guarded: RunningServer) -> None:
    answer = requests.delete(f"{guarded.http_endpoint}/health", timeout=5)
    assert answer.status_code == 405
    assert answer.headers["x-ms-error-code"] == "MethodNotAllowed"
    assert answer.json()["error"]["code"] == "MethodNotAllowed"
    assert "GET" in answer.headers["allow"]


# -- client aborts -------------------------------------------------------------------------------------


def test_a_client_that_disconnects_mid_upload_is_an_abort_not_a_500(guarded: RunningServer) -> None:
    alice = new_user(guarded)
    thread_id = make_thread(guarded, alice)
    before = _metrics(guarded)
    sock = _connect(guarded)
    sock.sendall(
        f"POST /chat/threads/{thread_id}/messages?api-version=2021-09-07 HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {alice.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: 1000\r\n\r\n{{\"content\": \"half".encode()
    )
    sock.close()  # the head is complete, the body is not: the route sees the client leave
    label = '{operation="send_message"}'
    _wait(lambda: _sample(_metrics(guarded), "threadline_client_aborts_total", label)
          == _sample(before, "threadline_client_aborts_total", label) + 1, 10, "the abort to be counted")
    after = _metrics(guarded)
    assert 'status="500"' not in after
    assert not [line for line in guarded.output if '"level": "error"' in line]
    listed = requests.get(f"{guarded.http_endpoint}/chat/threads/{thread_id}/messages?api-version=2021-09-07",
                          headers={"Authorization": f"Bearer {alice.token}"}, timeout=10).json()
    assert not [m for m in listed["value"] if m["type"] == "text"]


def test_connection_flags_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from threadline.cli import _parser, _settings

    monkeypatch.setenv("THREADLINE_BODY_TIMEOUT", "7.5")
    args = _parser().parse_args([
        "serve", "--header-timeout", "3", "--max-connections", "123", "--max-request-line", "4096",
        "--max-header-bytes", "9000", "--realtime-per-user", "4", "--realtime-queue-bytes", "1000",
    ])
    settings = _settings(args)
    assert (settings.header_timeout, settings.body_timeout, settings.max_connections) == (3.0, 7.5, 123)
    assert (settings.max_request_line, settings.max_header_bytes) == (4096, 9000)
    assert (settings.realtime_per_user, settings.realtime_queue_bytes) == (4, 1000)


def test_the_cap_fits_the_open_file_limit() -> None:
    import resource
    import subprocess
    import sys

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    script = ("import resource; from threadline.server.runner import connection_cap; "
              "print(connection_cap(10000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])")

    def run(soft: int) -> tuple[int, int]:
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
        ).stdout.split()
        return int(out[0]), int(out[1])

    # A shell's default soft limit is raised as far as the cap needs (and the hard limit allows).
    cap, soft = run(1024)
    if hard == resource.RLIM_INFINITY or hard >= 10_256:
        assert (cap, soft) == (10_000, 10_256)
    else:
        assert (cap, soft) == (hard - 256, hard)
