"""samples/webhook_receiver.py, as docs/webhooks.md runs it: a ping gets a pong (both engines)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.communication.chat import ChatParticipant

from ..conftest import ENGINES, ROOT
from ..support import new_user, official_chat
from .helpers import subscribe, wait_active, webhook_server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("engine", ENGINES)
def test_ping_bot_answers_pong_through_a_webhook(engine: str, tmp_path: Path) -> None:
    with webhook_server(engine, tmp_path / "data") as server:
        alice, bot = new_user(server), new_user(server)
        port = _free_port()
        env = {**os.environ, "THREADLINE_ENDPOINT": server.http_endpoint, "BOT_TOKEN": bot.token,
               "BOT_USER_ID": bot.id, "WEBHOOK_SECRET": "bot-secret-1"}
        sample = subprocess.Popen([sys.executable, str(ROOT / "samples" / "webhook_receiver.py"), "--port", str(port)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert sample.stdout is not None
            assert "listening" in sample.stdout.readline()
            sub = subscribe(server, f"http://127.0.0.1:{port}/events", events=["ChatMessageReceived"],
                            secret="bot-secret-1")
            wait_active(server, sub["id"])
            chat = official_chat(server, alice)
            thread_id = chat.create_chat_thread("bot", thread_participants=[
                ChatParticipant(identifier=alice.identifier, display_name="Alice"),
                ChatParticipant(identifier=bot.identifier, display_name="Bot")]).chat_thread.id
            thread = chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
            thread.send_message("ping")
            deadline = time.monotonic() + 30
            pongs: list[str] = []
            while time.monotonic() < deadline and not pongs:
                pongs = [m.content.message for m in thread.list_messages()
                         if m.type == "text" and m.sender is not None and m.sender.properties["id"] == bot.id]
                time.sleep(0.1)
            assert pongs == ["pong"]
        finally:
            sample.kill()
            sample.wait()
