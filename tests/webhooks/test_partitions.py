"""Webhook cursors over event partitions (both engines; PostgreSQL has 32 partitions, SQLite one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from threadline.store import positions

from ..conftest import ENGINES, RunningServer
from ..support import new_user, official_chat
from .helpers import admin, subscribe, wait_active, webhook_server
from .receiver import running_receiver

RECEIVED = "Microsoft.Communication.ChatMessageReceivedInThread"


def _thread(server: RunningServer, alice: Any, topic: str) -> tuple[Any, str]:
    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread(topic).chat_thread.id
    return chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path), thread_id


@pytest.mark.parametrize("engine", ENGINES)
def test_an_event_committed_later_with_a_lower_position_is_delivered(engine: str, tmp_path: Path) -> None:
    """Positions of different partitions are not in commit order: the cursor is per partition, not one number."""
    partitions = 32 if engine == "postgres" else 1
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        alice = new_user(server)
        busy, busy_id = _thread(server, alice, "busy")
        quiet, quiet_id = _thread(server, alice, "quiet")
        for i in range(64):  # on PostgreSQL, a thread of another partition than the busy one
            if positions.partition_of(quiet_id, partitions) != positions.partition_of(busy_id, partitions) \
                    or partitions == 1:
                break
            quiet, quiet_id = _thread(server, alice, f"quiet {i}")
        sub = subscribe(server, rec.url + "/all", events=["ChatMessageReceivedInThread"])
        wait_active(server, sub["id"])
        for i in range(5):  # the busy thread's partition counter moves well past the quiet one's
            busy.send_message(f"busy {i}")
        rec.wait(lambda: len(rec.events("/all")) >= 5)
        quiet.send_message("late")
        rec.wait(lambda: len(rec.events("/all")) >= 6)
        bodies = [e["data"]["messageBody"] for e in rec.events("/all") if e["eventType"] == RECEIVED]
        assert bodies == [f"busy {i}" for i in range(5)] + ["late"]
        *busy_events, late = rec.events("/all")
        assert late["data"]["threadId"] == quiet_id
        # The log position ends each event's transactionId: on PostgreSQL the late one is below the busy ones,
        # so a cursor of one number (the highest delivered) would have skipped it for ever.
        position = int(late["data"]["transactionId"].rsplit(".", 1)[1])
        highest = max(int(e["data"]["transactionId"].rsplit(".", 1)[1]) for e in busy_events)
        assert partitions == 1 or position < highest
        state = admin(server, "GET", f"/admin/webhooks/{sub['id']}").json()
        cursor = positions.parse(state["cursor"])
        assert isinstance(cursor, positions.Cursor) and cursor.partitions == partitions
