"""Operations: health, readiness, Prometheus metrics, JSON access logs, online backup."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from threadline.identity.tokens import TokenIssuer, derive_signing_key
from threadline.server import metrics
from threadline.server.app import create_app, open_hub, open_store
from threadline.server.settings import Settings

from ..conftest import RunningServer
from .conftest import start
from .helpers import Chat, make_user, q, user_messages


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if m is None or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if found == labels:
            return float(m.group(3))
    return 0.0


def test_health_and_ready(open_server: RunningServer) -> None:
    chat = Chat(open_server.http_endpoint, None)
    health = chat.session.get(open_server.http_endpoint + "/health", timeout=5)
    ready = chat.session.get(open_server.http_endpoint + "/ready", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_metrics_count_requests_and_latency_per_operation(open_server: RunningServer) -> None:
    alice = make_user(open_server)
    chat = Chat(open_server.http_endpoint, alice.token)
    url = open_server.http_endpoint + "/metrics"
    before = chat.session.get(url, timeout=5)
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain; version=")
    thread_id = chat.create_thread("metrics", [])
    for n in range(5):
        chat.send(thread_id, f"m{n}")
    assert chat.call("GET", f"/chat/threads/{q(thread_id)}/messages/123").status_code == 404
    after = chat.session.get(url, timeout=5).text
    sends = sample(after, "threadline_requests_total", operation="send_message", status="201")
    assert sends - sample(before.text, "threadline_requests_total", operation="send_message", status="201") == 5
    assert sample(after, "threadline_requests_total", operation="get_message", status="404") >= 1
    answered = sum(  # the histogram counts sends of every status
        float(m.group(1)) for m in re.finditer(
            r'^threadline_requests_total\{operation="send_message",status="\d+"\} (\S+)$', after, re.M)
    )
    count = sample(after, "threadline_request_duration_seconds_count", operation="send_message")
    assert count == answered >= sends
    assert sample(after, "threadline_request_duration_seconds_bucket", operation="send_message", le="+Inf") == count
    assert 0 < sample(after, "threadline_request_duration_seconds_sum", operation="send_message") < count
    assert "threadline_realtime_connections" in after
    assert sample(after, "threadline_event_hub_connected") == 1.0  # in-process hub, or Redis subscribed
    assert sample(after, "process_resident_memory_bytes") > 0


def test_database_errors_are_counted_and_answered_503(tmp_path: Path) -> None:
    """A store that went away answers 503 ServiceUnavailable with Retry-After and is counted."""
    settings = Settings(data_dir=tmp_path, http_port=-1, https_port=-1).prepared()

    async def scenario() -> tuple[httpx.Response, float, float]:
        store = open_store(settings)
        await store.open()
        hub = open_hub(settings, store)
        await hub.start()
        app = create_app(settings, store, hub)
        assert settings.resource_id is not None
        issuer = TokenIssuer(derive_signing_key(settings.key_bytes), settings.resource_id)
        token, _ = issuer.issue(f"8:acs:{settings.resource_id}_someone", ["chat"], 60, 0)
        await store.close()  # the database is gone from under the running app
        before = sample(metrics.render().decode(), "threadline_database_errors_total", kind="unavailable")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answer = await client.get("/chat/threads?api-version=2024-03-07",
                                      headers={"Authorization": f"Bearer {token}"})
            ready = await client.get("/ready")
        await hub.stop()
        after = sample(metrics.render().decode(), "threadline_database_errors_total", kind="unavailable")
        assert ready.status_code == 503
        return answer, before, after

    answer, before, after = asyncio.run(scenario())
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "ServiceUnavailable")
    assert answer.headers["Retry-After"] == "1"
    assert after - before == 1


def test_realtime_connection_gauge() -> None:
    def gauge() -> float:
        return sample(metrics.render().decode(), "threadline_realtime_connections")

    start_value = gauge()
    metrics.connections_opened()
    metrics.connections_opened()
    assert gauge() == start_value + 2
    metrics.connections_closed()
    assert gauge() == start_value + 1
    metrics.connections_closed()
    assert gauge() == start_value


def test_json_access_log_carries_the_echoed_request_id(tmp_path: Path) -> None:
    server = start(tmp_path / "data", "--no-limits", "--log-level", "info")
    try:
        alice = make_user(server)
        chat = Chat(server.http_endpoint, alice.token)
        thread_id = chat.create_thread("logged", [])
        answer = chat.call("POST", f"/chat/threads/{q(thread_id)}/messages", {"content": "hello"},
                           headers={"x-ms-client-request-id": "client-id-42"})
        assert answer.headers["x-ms-request-id"] == "client-id-42"
        anonymous = chat.call("GET", "/chat/threads", headers={"Authorization": "Bearer nope"})
        server_id = anonymous.headers["x-ms-request-id"]
        assert "x-ms-client-request-id" not in anonymous.headers
        deadline = time.monotonic() + 5
        entries: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            entries = [json.loads(line) for line in list(server.output) if line.startswith("{")]
            if any(e.get("request_id") == server_id for e in entries):
                break
            time.sleep(0.05)
    finally:
        server.stop()
    sent = next(e for e in entries if e.get("request_id") == "client-id-42")
    assert sent["logger"] == "threadline.access"
    assert sent["level"] == "info"
    assert (sent["operation"], sent["method"], sent["status"]) == ("send_message", "POST", 201)
    assert sent["client_request_id"] == "client-id-42"
    assert sent["path"] == f"/chat/threads/{thread_id}/messages"
    assert isinstance(sent["duration_ms"], float) and sent["duration_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(sent["time"]))
    refused = next(e for e in entries if e.get("request_id") == server_id)
    assert (refused["status"], refused["error_code"], refused["client_request_id"]) == (401, "Unauthorized", None)


def test_backup_while_serving_gives_a_consistent_copy_that_serves(tmp_path: Path) -> None:
    (tmp_path / "live").mkdir()
    server = start(tmp_path / "live" / "data", "--no-limits")
    alice = make_user(server)
    chat = Chat(server.http_endpoint, alice.token)
    thread_id = chat.create_thread("backed up", [])
    acked: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        writing = Chat(server.http_endpoint, alice.token)
        n = 0
        while not stop.is_set():
            writing.send(thread_id, f"m{n}")
            acked.append(f"m{n}")
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(acked) < 50:
            time.sleep(0.01)
        acked_before = len(acked)
        copy = tmp_path / "copy" / "data" / "threadline.db"
        done = subprocess.run(
            [sys.executable, "-m", "threadline", "backup", str(copy), "--data", str(server.data_dir)],
            capture_output=True, text=True, timeout=60,
        )
        acked_after = len(acked)
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(rf"backed up \S+ to {re.escape(str(copy))} \(\d+ bytes\)\n", done.stdout)
    assert not copy.with_name("threadline.db.partial").exists()
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        contents = [r[0] for r in db.execute("SELECT content FROM messages WHERE type = 'text' ORDER BY seq")]
    # a prefix of the sends, with every send acknowledged before the backup began
    assert acked_before <= len(contents) <= acked_after
    assert contents == [f"m{n}" for n in range(len(contents))]
    server.stop()
    for name in ("access-key", "resource-id"):
        shutil.copy(server.data_dir / name, copy.parent / name)
    restored = start(copy.parent, "--no-limits")
    try:
        listed = Chat(restored.http_endpoint, alice.token).messages(thread_id)
        assert [m["content"]["message"] for m in reversed(user_messages(listed))] == contents
    finally:
        restored.stop()


def test_backup_of_postgresql_prints_the_pg_dump_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "threadline", "backup", str(tmp_path / "dump file"), "--data", str(tmp_path),
         "--database", "postgresql://chat@db.internal:5432/threadline"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"  pg_dump --format=custom --file '{tmp_path / 'dump file'}' postgresql://chat@db.internal:5432/threadline"
    )


def test_backup_without_a_database_fails_cleanly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "threadline", "backup", str(tmp_path / "copy.db"), "--data", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60,
    )
    assert (done.returncode, done.stdout) == (2, "")  # issue 14: every CLI error is one line with status 2
    assert done.stderr.startswith(f"threadline backup: error: --data {tmp_path / 'none'}: no database at ")
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("level", ["loud"])
def test_logging_rejects_unknown_levels(level: str) -> None:
    with pytest.raises(ValueError, match="log level"):
        metrics.configure_logging(level)
