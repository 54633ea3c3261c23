"""samples/realtime_chat.py: two users chatting in real time, each seeing only the other's events (both
engines, via ``server``)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

from azure.communication.chat import ChatParticipant

from ..conftest import ROOT, RunningServer
from ..support import new_user, official_chat
from .test_samples import sample_env

SAMPLE = ROOT / "samples" / "realtime_chat.py"


def test_demo_conversation_filters_each_users_own_events(server: RunningServer) -> None:
    done = subprocess.run([sys.executable, str(SAMPLE)], env=sample_env(server, "http"), capture_output=True,
                          text=True, timeout=120, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    said = [line for line in lines if ": " in line and "read message" not in line]
    assert said == [
        "[Bob] Alice: Hi Bob, are you there?",
        "[Alice] Bob: Hi Alice! Yes, I see you in real time.",
        "[Bob] Alice: Great, see you later.",
        "[Alice] Bob: Bye!",
    ]
    # read receipts name the reader; nobody hears its own typing, receipts or messages
    assert [line.split(" message ")[0] for line in lines if "read message" in line] == [
        "[Alice] Bob read", "[Bob] Alice read", "[Alice] Bob read"]
    assert sorted(line for line in lines if "typing" in line) == sorted(
        ["[Bob] Alice is typing..."] * 2 + ["[Alice] Bob is typing..."] * 2)
    assert lines[-1] == "OK realtime_chat" and "Traceback" not in done.stderr


def test_chat_mode_from_two_terminals(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = official_chat(server, alice).create_chat_thread("two terminals", thread_participants=[
        ChatParticipant(identifier=alice.identifier, display_name="Alice"),
        ChatParticipant(identifier=bob.identifier, display_name="Bob"),
    ]).chat_thread.id
    env = sample_env(server, "http")

    def start(token: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
        process = subprocess.Popen([sys.executable, str(SAMPLE), "chat", token, thread_id], env=env, text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   cwd=str(ROOT))
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line.rstrip()) for line in process.stdout],  # type: ignore[union-attr]
                         daemon=True).start()
        return process, lines

    def expect(lines: queue.Queue[str], wanted: str) -> list[str]:
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while wanted not in seen and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                break
        assert wanted in seen, seen
        return seen

    (a, a_lines), (b, b_lines) = start(alice.token), start(bob.token)
    try:
        expect(a_lines, "Connected to 'two terminals'; type a line and press Enter, Ctrl+D to leave.")
        expect(b_lines, "Connected to 'two terminals'; type a line and press Enter, Ctrl+D to leave.")
        assert a.stdin is not None and b.stdin is not None
        a.stdin.write("hello from alice\n")
        a.stdin.flush()
        expect(b_lines, "[you] Alice: hello from alice")
        b.stdin.write("hello from bob\n")
        b.stdin.flush()
        expect(a_lines, "[you] Bob: hello from bob")
        a.stdin.close()
        b.stdin.close()
        assert a.wait(30) == 0 and b.wait(30) == 0
        rest = list(a_lines.queue) + list(b_lines.queue)
        assert not [line for line in rest if "hello from alice" in line and line.startswith("[you] Alice")]
        assert not [line for line in rest if "Traceback" in line]
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
