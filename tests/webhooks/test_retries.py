"""Retries, timeouts, dead letters, replay, isolation and destination safety (both engines).

The servers run Event Grid's schedule shrunk 100x (10 s -> 0.1 s) and a 2 s request timeout.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.communication.chat import ChatParticipant

from ..conftest import ENGINES, RunningServer
from ..support import new_user, official_chat
from .helpers import admin, subscribe, wait_active, webhook_server
from .receiver import Receiver, running_receiver

P = "Microsoft.Communication."
IN_THREAD = [P + "ChatMessageReceivedInThread"]


def _thread(server: RunningServer) -> Any:
    alice = new_user(server)
    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread("r", thread_participants=[
        ChatParticipant(identifier=alice.identifier, display_name="A")]).chat_thread.id
    return chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)


def _bodies(rec: Receiver, path: str) -> list[str]:
    return [e["data"]["messageBody"] for e in rec.events(path)]


@pytest.mark.parametrize("engine", ENGINES)
def test_failing_timing_out_and_slow_receiver_recovers_in_order_with_same_ids(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        sub = subscribe(server, rec.url + "/r", events=IN_THREAD)
        wait_active(server, sub["id"])
        # m0: 500, 503, a hang past the 2 s timeout, then 200. m1: slow (0.5 s) but in time. m2: 200.
        rec.plan = [500, 503, ("sleep", 3.0, 200), 200, ("sleep", 0.5, 200), 200]
        thread = _thread(server)
        for i in range(3):
            thread.send_message(f"m{i}")
        # Six deliveries, each recorded once answered: the hung one only when its 3 s are up, which
        # can be after m2 (the retry that follows the 2 s timeout comes 0.1 s later).
        rec.wait(lambda: "m2" in _bodies(rec, "/r") and len(rec.deliveries("/r")) >= 6, timeout=40)
        deliveries = rec.deliveries("/r")
        assert len(deliveries) == 6
        first_ids = [d.json[0]["id"] for d in deliveries if d.json[0]["data"]["messageBody"] == "m0"]
        assert len(first_ids) == 4 and len(set(first_ids)) == 1  # 3 failures + success, one id
        counts = [d.headers["aeg-delivery-count"] for d in deliveries if d.json[0]["data"]["messageBody"] == "m0"]
        assert counts == ["0", "1", "2", "3"]
        # Order: nothing of m1 before m0 succeeded, m2 after m1.
        ok_order = [d.json[0]["data"]["messageBody"] for d in deliveries if d.headers["x-test-status"] == "200"]
        assert ok_order == ["m0", "m1", "m2"]
        stats = admin(server, "GET", f"/admin/webhooks/{sub['id']}").json()
        assert stats["attempts"] == 0
        metrics = requests.get(f"{server.http_endpoint}/metrics", timeout=5).text
        assert f'threadline_webhook_failed_attempts_total{{subscription="{sub["id"]}"}}' in metrics
        assert f'threadline_webhook_delivered_events_total{{subscription="{sub["id"]}"}}' in metrics
        assert f'threadline_webhook_lag_events{{subscription="{sub["id"]}"}}' in metrics
        assert requests.get(f"{server.http_endpoint}/ready", timeout=5).status_code == 200


@pytest.mark.parametrize("engine", ENGINES)
def test_no_retry_answers_and_max_attempts_dead_letter_then_replay(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        sub = subscribe(server, rec.url + "/d", events=IN_THREAD, maxDeliveryAttempts=2)
        wait_active(server, sub["id"])
        # bad: 400 = no retry, dead-lettered at once. worse: 503 twice = max attempts. fine: delivered.
        rec.plan = [400, 503, 503, 200]
        thread = _thread(server)
        for body in ("bad", "worse", "fine"):
            thread.send_message(body)
        rec.wait(lambda: "fine" in _bodies(rec, "/d"))
        dead = admin(server, "GET", f"/admin/webhooks/{sub['id']}/deadletters").json()["value"]
        assert [d["event"]["data"]["messageBody"] for d in dead] == ["bad", "worse"]
        assert dead[0]["attempts"] == 1 and "HTTP 400" in dead[0]["reason"]
        assert dead[1]["attempts"] == 2 and "MaxDeliveryAttemptsExceeded" in dead[1]["reason"]
        from azure.eventgrid import EventGridEvent

        assert EventGridEvent.from_dict(dead[0]["event"]).event_type == IN_THREAD[0]
        ids = {d["event"]["data"]["messageBody"]: d["eventId"] for d in dead}
        answer = admin(server, "POST", f"/admin/webhooks/{sub['id']}/:replay", {})
        assert answer.status_code == 202 and answer.json()["deadLettersReplayed"] == 2
        rec.wait(lambda: {"bad", "worse"} <= set(_bodies(rec, "/d")[-2:]) or
                 admin(server, "GET", f"/admin/webhooks/{sub['id']}/deadletters").json()["value"] == [])
        rec.wait(lambda: admin(server, "GET", f"/admin/webhooks/{sub['id']}/deadletters").json()["value"] == [])
        replayed = [e for e in rec.events("/d") if e["data"]["messageBody"] in ("bad", "worse")]
        assert {e["data"]["messageBody"]: e["id"] for e in replayed[-2:]} == ids  # same ids on replay


@pytest.mark.parametrize("engine", ENGINES)
def test_a_hanging_receiver_delays_neither_other_subscriptions_nor_the_chat_api(engine: str, tmp_path: Path) -> None:
    with running_receiver() as slow, running_receiver() as fast, \
            webhook_server(engine, tmp_path / "data") as server:
        slow.plan = [("sleep", 3.0, 200)] * 50
        hanging = subscribe(server, slow.url + "/slow", events=IN_THREAD)
        quick = subscribe(server, fast.url + "/fast", events=IN_THREAD)
        wait_active(server, hanging["id"])
        wait_active(server, quick["id"])
        thread = _thread(server)
        started = time.monotonic()
        for i in range(5):
            thread.send_message(f"x{i}")
        api_seconds = time.monotonic() - started
        fast.wait(lambda: len(_bodies(fast, "/fast")) == 5, timeout=10)
        assert time.monotonic() - started < 5  # the slow receiver's 2 s timeouts would add up to > 10 s
        assert api_seconds < 3
        assert _bodies(fast, "/fast") == [f"x{i}" for i in range(5)]


@pytest.mark.parametrize("engine", ENGINES)
def test_destinations_are_checked_and_redirects_not_followed(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data", THREADLINE_WEBHOOK_ALLOW="") as strict:
        refused = admin(strict, "POST", "/admin/webhooks", {"url": rec.url + "/x"})
        assert refused.status_code == 400 and "non-public" in refused.json()["error"]["message"]
        assert admin(strict, "POST", "/admin/webhooks", {"url": "http://169.254.169.254/latest"}).status_code == 400
        assert admin(strict, "POST", "/admin/webhooks", {"url": "http://user:pw@example.com/"}).status_code == 400
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data2") as server:
        sub = subscribe(server, rec.url + "/redir", events=IN_THREAD, maxDeliveryAttempts=2)
        wait_active(server, sub["id"])
        rec.plan = [302, 302, "endless"]
        thread = _thread(server)
        thread.send_message("moved")
        rec.wait(lambda: admin(server, "GET", f"/admin/webhooks/{sub['id']}/deadletters").json()["value"] != [])
        assert not any(r.path == "/redirected" for r in rec.requests)
        # An endless answer is cut at the size cap: delivered on the first attempt. Were the body read to
        # its end, the attempt would time out and be retried before "after" (delivery is in order).
        thread.send_message("endless")
        thread.send_message("after")
        rec.wait(lambda: "after" in _bodies(rec, "/redir"))
        endless = [d for d in rec.deliveries("/redir") if d.json[0]["data"]["messageBody"] == "endless"]
        assert [d.headers["aeg-delivery-count"] for d in endless] == ["0"]


def test_each_attempt_logs_one_structured_line_without_secrets(tmp_path: Path) -> None:
    import json as _json

    with running_receiver() as rec, webhook_server("sqlite", tmp_path / "data", THREADLINE_LOG_LEVEL="info") as server:
        sub = subscribe(server, rec.url + "/log", events=IN_THREAD, secret="never-log-me-42")
        wait_active(server, sub["id"])
        rec.plan = [503, 200]
        _thread(server).send_message("logged")
        rec.wait(lambda: "logged" in _bodies(rec, "/log"))
        server.stop()
        assert server.process.stdout is not None
        output = server.process.stdout.read()
    assert "never-log-me-42" not in output
    lines = [_json.loads(line) for line in output.splitlines() if line.startswith("{")]
    attempts = [entry for entry in lines if entry.get("logger") == "threadline.webhooks"
                and entry.get("subscription") == sub["id"]]
    outcomes = [entry["outcome"] for entry in attempts]
    assert outcomes == ["validated", "retrying", "delivered"]
    retry, done = attempts[1], attempts[2]
    assert (retry["status"], retry["deliveryCount"], retry["error"]) == (503, 0, "HTTP 503")
    assert (done["status"], done["deliveryCount"], done["events"]) == (200, 1, 1)
    assert done["firstEventId"] == retry["firstEventId"] and done["durationMs"] >= 0
