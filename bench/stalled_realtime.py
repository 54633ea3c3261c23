"""How much server memory one stalled real-time connection can hold.

Starts ``threadline serve`` (SQLite, plain HTTP on 127.0.0.1, throttling off,
every other setting at its default unless ``--server-arg`` adds flags), opens
one ``/chat/realtime`` stream on a bare socket with a 4 KiB receive buffer
that never reads after ``synced``, and sends messages of 4-byte characters
(7,000 emoji = 28,000 UTF-8 bytes, the ACS size limit) to a thread it is in,
until the server closes the stream as too slow (``4008``). After each send it
reads ``threadline_realtime_queued_bytes`` from ``/metrics`` and the server's
VmRSS, and prints the peak of both.

Usage::

    .venv/bin/python bench/stalled_realtime.py
    .venv/bin/python bench/stalled_realtime.py --server-arg=--realtime-queue-bytes=65536

Bounded: at most ``--messages`` sends (default 1,000); traffic to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from threadline.chat import ChatClient, ChatParticipant, CommunicationTokenCredential
from threadline.identity import CommunicationIdentityClient


def rss_kib(pid: int) -> int:
    """The resident set size of a process in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    return int(match.group(1)) if match else 0


def metric(endpoint: str, sample: str) -> float:
    text = requests.get(f"{endpoint}/metrics", timeout=5).text
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def stalled_stream(endpoint: str, token: str) -> socket.socket:
    """A WebSocket handshake on a socket with a tiny receive buffer; returns once ``synced`` arrived."""
    host, port = endpoint.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.settimeout(10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /chat/realtime HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Authorization: Bearer {token}\r\n\r\n").encode())
    seen = b""
    while b'"synced"' not in seen:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("the stream closed before synced")
        seen += chunk
    return sock


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=1000, help="most messages to send (default 1000)")
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for threadline serve")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="threadline-stalled-") as tmp:
        data = Path(tmp) / "data"
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "threadline", "serve", "--data", str(data), "--http-port", "0",
                 "--https-port", "-1", "--throttle", "off", *args.server_arg],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            endpoint = ""
            for _ in range(300):
                if match := re.search(r"HTTP endpoint:\s+(\S+)", log.read_text() if log.exists() else ""):
                    endpoint = match.group(1)
                    break
                time.sleep(0.1)
            if not endpoint:
                raise RuntimeError("the server did not start")
            key = (data / "access-key").read_text().strip()
            identity = CommunicationIdentityClient.from_connection_string(f"endpoint={endpoint}/;accesskey={key}")
            (_, alice_token), (slow, slow_token) = [identity.create_user_and_token(["chat"]) for _ in range(2)]
            chat = ChatClient(endpoint, CommunicationTokenCredential(alice_token.token))
            thread = chat.create_chat_thread("stalled", thread_participants=[ChatParticipant(identifier=slow)])
            assert thread.chat_thread is not None
            sender = chat.get_chat_thread_client(thread.chat_thread.id)
            sock = stalled_stream(endpoint, slow_token.token)
            content = "\N{GRINNING FACE}" * 7000
            rss_before = rss_kib(process.pid)
            peak_queue = peak_rss = 0.0
            sent = 0
            while sent < args.messages:
                sender.send_message(content)
                sent += 1
                peak_queue = max(peak_queue, metric(endpoint, "threadline_realtime_queued_bytes"))
                peak_rss = max(peak_rss, rss_kib(process.pid))
                if metric(endpoint, 'threadline_realtime_server_closes_total{code="4008"}') > 0:
                    break
            sock.close()
            print(f"messages sent before the 4008 close: {sent} ({sent * 28_000:,} UTF-8 bytes of content)")
            print(f"peak bytes in the stalled connection's queue: {peak_queue:,.0f}")
            print(f"server RSS: {rss_before:,} KiB before, peak {peak_rss:,.0f} KiB "
                  f"(+{peak_rss - rss_before:,.0f} KiB)")
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
