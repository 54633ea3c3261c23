"""Run every sample script (the official docs' examples) as a subprocess against the real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT, RunningServer

SAMPLES = ROOT / "samples"
CHAT_CLIENT = ["create_chat_client", "create_thread", "get_chat_thread_client", "list_threads", "delete_thread"]
THREAD_CLIENT = [
    "create_chat_thread_client", "get_properties", "update_topic", "send_message", "get_message", "list_messages",
    "update_message", "send_read_receipt", "list_read_receipts", "send_typing_notification", "add_participants",
    "list_participants", "remove_participant", "delete_message",
]
SCRIPTS = {
    "chat_client_sample.py": CHAT_CLIENT,
    "chat_client_sample_async.py": CHAT_CLIENT,
    "chat_thread_client_sample.py": THREAD_CLIENT,
    "chat_thread_client_sample_async.py": THREAD_CLIENT,
}
#: Lines the examples print when they did what they claim.
EXPECTED = {
    "chat_client": [
        r"thread created:  19:\w+@thread\.v2 test topic",
        r"get_chat_thread_client succeeded with thread id:  19:\w+@thread\.v2",
        r"thread id:  19:\w+@thread\.v2",
        r"delete_thread succeeded",
    ],
    "chat_thread_client": [
        r"Expected Thread Id:  (19:\w+@thread\.v2)  Actual Value:  \1",
        r"Chat Thread Topic Update: Previous value:  test topic , Current value:  updated thread topic",
        r"First Message: Hello! My name is Fred Flinstone \{'tags': 'tags'\}",
        r"Second Message: Hello! My name is Wilma Flinstone",
        r"Message received: ChatMessage: content= Hello! My name is Fred Flinstone , id= \d+",
        r"ChatMessage: message= Hello! My name is Wilma Flinstone",
        r"Chat Message Updated: Previous value:  Hello! My name is Fred Flinstone , "
        r"Current value:  updated message content",
        r"ChatMessageReadReceipt\(sender=CommunicationUserIdentifier\(raw_id='8:acs:",
        r"add_participants succeeded, failures: \[\]",
        r"Found Fred!",
        r"Wilma has been removed from the thread\.\.\.",
    ],
}


def sample_env(server: RunningServer, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    env["PYTHONPATH"] = str(ROOT / "src")
    if mode == "http":
        env["THREADLINE_ENDPOINT"] = server.http_endpoint
        env["THREADLINE_CONNECTION_STRING"] = f"endpoint={server.http_endpoint}/;accesskey={server.access_key}"
    else:
        # The examples build clients exactly as the docs do, without connection_verify:
        # trust the server's CA through the variables each transport reads.
        env["THREADLINE_ENDPOINT"] = server.https_endpoint
        env["THREADLINE_CONNECTION_STRING"] = server.connection_string
        env["THREADLINE_CA"] = server.cert_path
        env["REQUESTS_CA_BUNDLE"] = server.cert_path
        env["SSL_CERT_FILE"] = server.cert_path
    return env


def run_sample(script: str, env: dict[str, str], *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SAMPLES / script), *names], env=env, capture_output=True,
                          text=True, timeout=120, cwd=str(ROOT))


@pytest.mark.parametrize("mode", ["http", "https"])
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_sample_runs_every_example(server: RunningServer, script: str, mode: str) -> None:
    result = run_sample(script, sample_env(server, mode))
    assert result.returncode == 0, result.stderr
    done = re.findall(r"^OK (\w+)$", result.stdout, re.MULTILINE)
    assert done == SCRIPTS[script]
    for pattern in EXPECTED[script.removesuffix(".py").removesuffix("_async").removesuffix("_sample")]:
        assert re.search(pattern, result.stdout), pattern
    assert "Traceback" not in result.stderr


def test_a_single_example_creates_what_it_needs(server: RunningServer) -> None:
    result = run_sample("chat_thread_client_sample_async.py", sample_env(server, "http"), "get_message")
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^OK (\w+)$", result.stdout, re.MULTILINE) == [
        "create_chat_thread_client", "send_message", "get_message"
    ]


def test_samples_only_swap_the_import() -> None:
    for script in SCRIPTS:
        text = (SAMPLES / script).read_text()
        assert "azure.communication.chat" not in text.replace("``azure.communication.chat", "")
        assert "from threadline.chat" in text
    assert Path(SAMPLES / "_sample_env.py").exists()
