"""Subscriptions: handshakes, filters, signature, batching, the signed admin API and the CLI (both engines)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from ..conftest import ENGINES, RunningServer
from ..support import new_user, official_chat
from .helpers import admin, subscribe, wait_active, webhook_server
from .receiver import running_receiver

P = "Microsoft.Communication."


def _thread(server: RunningServer, topic: str = "t") -> tuple[Any, str, Any]:
    alice, bob = new_user(server), new_user(server)
    from azure.communication.chat import ChatParticipant

    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread(topic, thread_participants=[
        ChatParticipant(identifier=alice.identifier, display_name="A"),
        ChatParticipant(identifier=bob.identifier, display_name="B")]).chat_thread.id
    return chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path), thread_id, alice


@pytest.mark.parametrize("engine", ENGINES)
def test_eventgrid_handshake_keeps_pending_until_echo_or_validation_url(engine: str, tmp_path: Path) -> None:
    public = "https://threadline.example"
    with running_receiver() as rec, \
            webhook_server(engine, tmp_path / "data", THREADLINE_WEBHOOK_PUBLIC_URL=public) as server:
        rec.echo_validation = False
        sub = subscribe(server, rec.url + "/hook")
        assert sub["status"] == "pending"
        rec.wait(lambda: any(r.headers.get("aeg-event-type") == "SubscriptionValidation" for r in rec.requests))
        validation = next(r for r in rec.requests if r.headers.get("aeg-event-type") == "SubscriptionValidation")
        [event] = validation.json
        assert event["eventType"] == "Microsoft.EventGrid.SubscriptionValidationEvent"
        assert event["subject"] == "" and len(event["data"]["validationCode"]) >= 20
        from azure.eventgrid import EventGridEvent, SystemEventNames

        parsed = EventGridEvent.from_dict(event)
        assert parsed.event_type == SystemEventNames.EventGridSubscriptionValidationEventName.value
        thread, _, _ = _thread(server)
        thread.send_message("before validation")
        time.sleep(0.5)  # a negative: nothing may be delivered while pending (bounded observation window)
        assert rec.deliveries() == []
        assert admin(server, "GET", f"/admin/webhooks/{sub['id']}").json()["status"] == "pending"
        # A wrong code does not validate; the right one (the validationUrl's) does, without any key.
        bad = requests.get(f"{server.http_endpoint}/admin/webhooks/{sub['id']}/validate?code=nope", timeout=5)
        assert bad.status_code == 404 and bad.json()["error"]["code"] == "NotFound"
        code = event["data"]["validationCode"]
        url = event["data"]["validationUrl"]
        assert url == f"{public}/admin/webhooks/{sub['id']}/validate?code={code}"
        good = requests.get(server.http_endpoint + url.removeprefix(public), timeout=5)  # "visit" it
        assert good.status_code == 200
        wait_active(server, sub["id"])
        rec.wait(lambda: any(e["data"].get("messageBody") == "before validation" for e in rec.events()))


@pytest.mark.parametrize("engine", ENGINES)
def test_cloudevents_options_handshake(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        rec.grant_origin = False
        sub = subscribe(server, rec.url + "/ce", schema="cloudevents")
        rec.wait(lambda: sum(r.method == "OPTIONS" for r in rec.requests) >= 2)  # refused, asked again
        assert admin(server, "GET", f"/admin/webhooks/{sub['id']}").json()["status"] == "pending"
        options = next(r for r in rec.requests if r.method == "OPTIONS")
        assert options.headers["webhook-request-origin"] == "eventgrid.azure.net"
        rec.grant_origin = True
        wait_active(server, sub["id"])
        assert not any(r.headers.get("aeg-event-type") == "SubscriptionValidation" for r in rec.requests)


@pytest.mark.parametrize("engine", ENGINES)
def test_filters_signature_and_batching(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        thread, thread_id, _ = _thread(server)
        other, _, _ = _thread(server)
        # Pending while the messages are sent (validation not echoed), so the backlog is batched.
        rec.echo_validation = False
        only_thread = subscribe(server, rec.url + "/prefix", subjectPrefix=f"thread/{thread_id}/")
        only_type = subscribe(server, rec.url + "/type", events=["ChatMessageReceivedInThread"],
                              secret="s3cret-value", batchSize=5)
        rec.wait(lambda: {r.path for r in rec.requests} >= {"/prefix", "/type"})
        for i in range(6):
            thread.send_message(f"m{i}")
            other.send_message(f"o{i}")
        for sub, path in ((only_thread, "/prefix"), (only_type, "/type")):
            handshake = next(r for r in rec.requests if r.path == path)
            code = handshake.json[0]["data"]["validationCode"]
            answer = requests.get(f"{server.http_endpoint}/admin/webhooks/{sub['id']}/validate?code={code}", timeout=5)
            assert answer.status_code == 200
        rec.wait(lambda: len(rec.events("/type")) >= 12 and len(rec.events("/prefix")) >= 12)
        time.sleep(0.3)  # let any stray extra delivery arrive before asserting exact counts
        prefix_events = rec.events("/prefix")
        assert all(e["subject"].startswith(f"thread/{thread_id}/") for e in prefix_events)
        # 6 messages x (1 in-thread + 1 for Bob)
        assert len(prefix_events) == 12
        typed = rec.events("/type")
        assert {e["eventType"] for e in typed} == {P + "ChatMessageReceivedInThread"}
        assert sorted(e["data"]["messageBody"] for e in typed) == sorted(
            [f"m{i}" for i in range(6)] + [f"o{i}" for i in range(6)])
        deliveries = rec.deliveries("/type")
        assert [len(d.json) for d in deliveries] == [5, 5, 2]
        assert rec.requests[0].headers.get("x-threadline-signature") is not None or \
            rec.requests[1].headers.get("x-threadline-signature") is not None  # the handshake is signed too
        for d in deliveries:
            expected = "sha256=" + hmac.new(b"s3cret-value", d.body, hashlib.sha256).hexdigest()
            assert d.headers["x-threadline-signature"] == expected
        assert all("x-threadline-signature" not in d.headers for d in rec.deliveries("/prefix"))


@pytest.mark.parametrize("engine", ENGINES)
def test_admin_api_is_signed_and_answers_acs_errors(engine: str, tmp_path: Path) -> None:
    with webhook_server(engine, tmp_path / "data") as server:
        unsigned = requests.get(f"{server.http_endpoint}/admin/webhooks?api-version=2025-03-15", timeout=5)
        assert unsigned.status_code == 401 and unsigned.headers["x-ms-error-code"]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"url": "ftp://127.0.0.1/x"}, "url"),
            ({"url": "http://10.1.2.3/x"}, "url"),
            ({"url": "http://127.0.0.1:1/x", "schema": "xml"}, "schema"),
            ({"url": "http://127.0.0.1:1/x", "events": ["NoSuchEvent"]}, "events"),
            ({"url": "http://127.0.0.1:1/x", "batchSize": 0}, "batchSize"),
            ({"url": "http://127.0.0.1:1/x", "maxDeliveryAttempts": 31}, "maxDeliveryAttempts"),
        ]
        for body, target in cases:
            answer = admin(server, "POST", "/admin/webhooks", body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["error"]["target"] == target and answer.headers["x-ms-error-code"]
        assert admin(server, "POST", "/admin/webhooks", {"nope": 1}).status_code == 400
        assert admin(server, "GET", "/admin/webhooks/wh_missing").status_code == 404
        assert admin(server, "DELETE", "/admin/webhooks/wh_missing").status_code == 404
        sub = subscribe(server, "http://127.0.0.1:1/x", secret="a-secret-1", events=["ChatMessageReceived"])
        assert sub["hasSecret"] is True and "secret" not in sub and "validationCode" not in sub
        assert sub["events"] == [P + "ChatMessageReceived"]
        listed = admin(server, "GET", "/admin/webhooks").json()["value"]
        assert [s["id"] for s in listed] == [sub["id"]]
        assert "a-secret-1" not in json.dumps(listed)
        # The dead-letter limit and the replay's since are the service's rules (the CLI shares them).
        dead = f"/admin/webhooks/{sub['id']}/deadletters"
        for size in ("0", "5001", "-1"):
            assert _refusal(admin(server, "GET", f"{dead}?maxPageSize={size}")) == \
                ("maxPageSize", "maxPageSize must be 1 to 5000.")
        assert _refusal(admin(server, "GET", f"{dead}?maxPageSize=x"))[0] == "maxPageSize"
        for size in ("1", "5000", ""):
            assert admin(server, "GET", f"{dead}?maxPageSize={size}").json() == {"value": []}
        replay = f"/admin/webhooks/{sub['id']}/:replay"
        for since in ("yesterday", "", "2026-13-01T00:00:00Z"):
            assert _refusal(admin(server, "POST", replay, {"since": since})) == \
                ("since", "since must be an ISO 8601 date-time.")
        assert _refusal(admin(server, "POST", replay, {"since": "9999-12-31T23:00:00-14:00"})) == \
            ("since", "since must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in UTC.")
        replayed = admin(server, "POST", replay, {"since": "2000-01-01T00:00:00+02:00"})
        assert replayed.status_code == 202 and replayed.json()["deadLettersReplayed"] == 0, replayed.text
        assert admin(server, "GET", "/admin/webhooks/wh_missing/deadletters?maxPageSize=0").status_code == 404
        assert admin(server, "DELETE", f"/admin/webhooks/{sub['id']}").status_code == 204
        assert admin(server, "GET", "/admin/webhooks").json()["value"] == []
        assert "a-secret-1" not in "\n".join(server.output)


def _refusal(answer: requests.Response) -> tuple[str, str]:
    """The target and message of a 400 in the ACS shape."""
    assert answer.status_code == 400 and answer.headers["x-ms-error-code"] == "BadRequest", answer.text
    error = answer.json()["error"]
    assert error["code"] == "BadRequest"
    return error["target"], error["message"]


def _cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "threadline", "webhook", *args, "--data", str(server.data_dir)]
    if server.engine == "postgres":
        command += ["--database", server.process.args[server.process.args.index("--database") + 1]]
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "THREADLINE_WEBHOOK_ALLOW": "127.0.0.1/32"})


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2 and done.stdout == "", (done.stdout, done.stderr)
    [line] = done.stderr.splitlines()
    return line


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_add_list_remove_deadletters_replay(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        added = _cli(server, "add", rec.url + "/cli", "--schema", "cloudevents", "--events",
                     "ChatMessageReceivedInThread", "--subject-prefix", "thread/", "--secret", "cli-secret")
        assert added.returncode == 0, added.stderr
        sub = json.loads(added.stdout)
        assert sub["schema"] == "cloudevents" and sub["subjectPrefix"] == "thread/"
        wait_active(server, sub["id"])
        thread, _, _ = _thread(server)
        thread.send_message("via cli")
        rec.wait(lambda: any(e["data"]["messageBody"] == "via cli" for e in rec.events("/cli")))
        listed = _cli(server, "list")
        assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [sub["id"]]
        assert "cli-secret" not in listed.stdout
        dead = _cli(server, "deadletters", sub["id"])
        assert dead.returncode == 0 and dead.stdout == ""
        assert _cli(server, "deadletters", sub["id"], "--limit", "5000").stdout == ""
        # A bad --limit or --since is refused as any bad flag is: one line, exit code 2, nothing replayed.
        for args, expected in (
            (["deadletters", sub["id"], "--limit", "0"], "--limit 0: must be 1 to 5000; use a number from 1 to 5000"),
            (["replay", sub["id"], "--since", "yesterday"],
             "--since yesterday: must be an ISO 8601 date-time; use an ISO 8601 date-time such as "
             "2026-01-01T00:00:00Z"),
        ):
            assert _one_line(_cli(server, *args)) == f"threadline webhook: error: {expected}"
        replay = _cli(server, "replay", sub["id"], "--since", "2000-01-01T00:00:00Z")
        assert replay.returncode == 0 and json.loads(replay.stdout)["deadLettersReplayed"] == 0
        # The rewind redelivers the kept events: the same message, with the same id.
        rec.wait(lambda: sum(e["data"]["messageBody"] == "via cli" for e in rec.events("/cli")) >= 2)
        ids = {e["id"] for e in rec.events("/cli") if e["data"]["messageBody"] == "via cli"}
        assert len(ids) == 1
        assert _cli(server, "add", "gopher://x").returncode == 1
        assert _cli(server, "remove", "wh_nope").returncode == 1
        assert _cli(server, "remove", sub["id"]).returncode == 0
        assert _cli(server, "list").stdout == ""


@pytest.mark.parametrize("engine", ENGINES)
def test_batches_stop_at_one_megabyte(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        thread, _, _ = _thread(server)
        rec.echo_validation = False  # pending while the backlog builds up
        sub = subscribe(server, rec.url + "/big", events=["ChatMessageReceivedInThread"], batchSize=5000)
        rec.wait(lambda: any(r.path == "/big" for r in rec.requests))
        for i in range(45):
            thread.send_message(f"{i:02d}" + "x" * 27_000)
        code = next(r for r in rec.requests if r.path == "/big").json[0]["data"]["validationCode"]
        assert requests.get(f"{server.http_endpoint}/admin/webhooks/{sub['id']}/validate?code={code}",
                            timeout=5).status_code == 200
        rec.wait(lambda: len(rec.events("/big")) >= 45)
        sizes = [len(d.body) for d in rec.deliveries("/big")]
        assert len(sizes) >= 2 and max(sizes) <= 1024 * 1024
        assert [e["data"]["messageBody"][:2] for e in rec.events("/big")] == [f"{i:02d}" for i in range(45)]
