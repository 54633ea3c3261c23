"""Durability: SIGKILL mid-delivery (both engines) and two nodes over PostgreSQL + Redis.

Every acknowledged message reaches the receiver at least once, always with the same id, and
no event of a thread arrives before an earlier event of the same thread.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from azure.communication.chat import ChatParticipant

from ..conftest import ENGINES, RunningServer, launch
from ..support import new_user, official_chat
from .helpers import WEBHOOK_ENV, admin, engine_args, leased_by, subscribe, wait_active
from .receiver import Receiver, running_receiver

P = "Microsoft.Communication."


def _threads(server: RunningServer, count: int) -> tuple[Any, list[str]]:
    alice = new_user(server)
    chat = official_chat(server, alice)
    ids = [chat.create_chat_thread(f"t{i}", thread_participants=[
        ChatParticipant(identifier=alice.identifier, display_name="A")]).chat_thread.id for i in range(count)]
    return alice, ids


def _clients(server: RunningServer, alice: Any, ids: list[str]) -> list[Any]:
    """Thread clients bound to one server (a restarted one listens on new ports)."""
    chat = official_chat(server, alice)
    return [chat.get_chat_thread_client(t, connection_verify=server.cert_path) for t in ids]


def _check(rec: Receiver, sent: dict[str, list[str]]) -> None:
    """At least once, one id per message, and per-thread order on every delivery."""
    ids: dict[str, set[str]] = {}
    seen: dict[str, set[str]] = {t: set() for t in sent}
    for delivery in rec.deliveries():
        for event in delivery.json:
            body, thread = event["data"]["messageBody"], event["data"]["threadId"]
            ids.setdefault(body, set()).add(event["id"])
            order = sent[thread]
            earlier = order[: order.index(body)]
            assert set(earlier) <= seen[thread], f"{body} arrived before {set(earlier) - seen[thread]}"
            seen[thread].add(body)
    for thread, bodies in sent.items():
        assert seen[thread] == set(bodies)
    assert all(len(v) == 1 for v in ids.values())


def _send(threads: list[Any], rounds: int, sent: dict[str, list[str]], tag: str) -> None:
    for r in range(rounds):
        for thread in threads:
            body = f"{tag}-{r}-{thread.thread_id[3:11]}"
            thread.send_message(body)
            sent.setdefault(thread.thread_id, []).append(body)


@pytest.mark.parametrize("engine", ENGINES)
def test_sigkill_mid_delivery_loses_nothing_and_keeps_ids_and_order(engine: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_receiver() as rec, engine_args(engine) as args:
        server = launch(data, *args, env=WEBHOOK_ENV)
        try:
            sub = subscribe(server, rec.url + "/k", events=[P + "ChatMessageReceivedInThread"])
            wait_active(server, sub["id"])
            rec.plan = [("sleep", 0.05, 200)] * 10_000  # slow enough to be mid-delivery when killed
            alice, ids = _threads(server, 3)
            sent: dict[str, list[str]] = {}
            _send(_clients(server, alice, ids), 10, sent, "a")
            rec.wait(lambda: len(rec.deliveries()) >= 3)
            server.stop(signal.SIGKILL)
            assert len(rec.deliveries()) < 30  # killed mid-way
            server = launch(data, *args, env=WEBHOOK_ENV)
            _send(_clients(server, alice, ids), 3, sent, "b")
            total = sum(len(v) for v in sent.values())
            rec.wait(lambda: len({e["data"]["messageBody"] for e in rec.events()}) >= total, timeout=60)
            _check(rec, sent)
        finally:
            server.stop(signal.SIGKILL)


def test_two_nodes_one_deliverer_and_handover_on_kill(tmp_path: Path) -> None:
    with running_receiver() as rec, engine_args("postgres") as args:
        first = launch(tmp_path / "a", *args, env=WEBHOOK_ENV)
        # The second node shares the key and resource id, as a cluster's nodes do.
        second_dir = tmp_path / "b"
        second_dir.mkdir()
        for name in ("access-key", "resource-id"):
            (second_dir / name).write_text((first.data_dir / name).read_text())
        second = launch(second_dir, *args, env=WEBHOOK_ENV)
        nodes = [first, second]
        try:
            sub = subscribe(first, rec.url + "/n", events=[P + "ChatMessageReceivedInThread"])
            wait_active(first, sub["id"])
            alice, ids = _threads(first, 2)
            sent: dict[str, list[str]] = {}
            _send(_clients(first, alice, ids), 10, sent, "a")
            rec.wait(lambda: len(rec.events()) >= 20)
            time.sleep(0.5)  # a negative: a second deliverer would show up as duplicates in this window
            assert len(rec.events()) == 20  # the receiver never failed: exactly once, so one deliverer
            holders = [n for n in nodes if leased_by(n, sub["id"])]
            assert len(holders) == 1
            owner = holders[0]
            survivor = second if owner is first else first
            rec.plan = [("sleep", 0.05, 200)] * 10_000
            _send(_clients(owner, alice, ids), 5, sent, "b")
            rec.wait(lambda: len(rec.deliveries()) >= 22)
            owner.stop(signal.SIGKILL)
            _send(_clients(survivor, alice, ids), 5, sent, "c")
            total = sum(len(v) for v in sent.values())
            rec.wait(lambda: len({e["data"]["messageBody"] for e in rec.events()}) >= total, timeout=60)
            rec.wait(lambda: leased_by(survivor, sub["id"]))
            assert admin(survivor, "GET", f"/admin/webhooks/{sub['id']}").json()["deliverer"] is not None
            _check(rec, sent)
        finally:
            for node in nodes:
                node.stop(signal.SIGKILL)


def test_clean_shutdown_hands_over_at_once(tmp_path: Path) -> None:
    """SIGTERM gives the lease back: the other node delivers long before a 60 s lease would expire."""
    env = {**WEBHOOK_ENV, "THREADLINE_WEBHOOK_LEASE_SECONDS": "60"}
    with running_receiver() as rec, engine_args("postgres") as args:
        first = launch(tmp_path / "a", *args, env=env)
        second_dir = tmp_path / "b"
        second_dir.mkdir()
        for name in ("access-key", "resource-id"):
            (second_dir / name).write_text((first.data_dir / name).read_text())
        second = launch(second_dir, *args, env=env)
        try:
            sub = subscribe(first, rec.url + "/t", events=[P + "ChatMessageReceivedInThread"])
            wait_active(first, sub["id"])
            rec.wait(lambda: leased_by(first, sub["id"]) or leased_by(second, sub["id"]))
            owner, survivor = (first, second) if leased_by(first, sub["id"]) else (second, first)
            assert owner.stop(signal.SIGTERM) == 0
            started = time.monotonic()
            alice, ids = _threads(survivor, 1)
            sent: dict[str, list[str]] = {}
            _send(_clients(survivor, alice, ids), 3, sent, "after")
            rec.wait(lambda: len(rec.events()) >= 3, timeout=30)
            assert time.monotonic() - started < 30  # an expiry-based handover would take 60 s
            assert leased_by(survivor, sub["id"])
            _check(rec, sent)
        finally:
            first.stop(signal.SIGKILL)
            second.stop(signal.SIGKILL)
