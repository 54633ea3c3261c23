"""The Explorer's Webhooks view in real headless Chromium, on both engines, against a loopback receiver.

Adds a subscription through the page, sees it listed and validated, sees a chat event arrive at the
receiver, lists a dead letter and replays it, then removes the subscription; hostile-looking values
stay text, every control is labelled and keyboard-reachable, and the view fits 360 px.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

import pytest
import requests

from ..conftest import ENGINES
from ..support import pair_thread
from ..webhooks.helpers import admin, subscribe, wait_active, webhook_server
from ..webhooks.receiver import running_receiver
from .helpers import ARTIFACTS, UNLABELLED, ExplorerSession, acs_error, explorer, unreachable_by_keyboard

P = "Microsoft.Communication."
HOSTILE = '<img src=x onerror="window.pwned=1">'


@pytest.mark.parametrize("engine", ENGINES)
def test_webhooks_view_adds_lists_delivers_replays_and_removes(engine: str, tmp_path: Path, browser: Any) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server, \
            explorer(browser, server.http_endpoint, server.access_key,
                     viewport={"width": 1200, "height": 1000}) as (page, problems):
        nav = page.get_by_role("navigation", name="Views")
        nav.get_by_role("button", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
        expect(page.get_by_text("No subscriptions.")).to_be_visible()

        # Add one through the form: Event Grid schema, one event type, a secret, batch size 1.
        hook = f"{rec.url}/explorer-hook"
        page.get_by_label("Receiver URL").fill(hook)
        page.get_by_label("Schema").select_option("eventgrid")
        page.get_by_label("Event types").fill(f"{P}ChatMessageReceivedInThread")
        page.get_by_label("Signing secret").fill("s3cret-from-the-page")
        page.get_by_label("Batch size").fill("1")
        page.get_by_role("button", name="Add subscription").click()
        subs = page.get_by_role("list", name="Subscriptions")
        expect(subs).to_contain_text(hook)
        expect(page.get_by_role("status")).to_contain_text(f"Added {hook}")
        [made] = admin(server, "GET", "/admin/webhooks").json()["value"]
        assert made["url"] == hook and made["schema"] == "eventgrid" and made["batchSize"] == 1
        assert made["events"] == [f"{P}ChatMessageReceivedInThread"] and made["hasSecret"] is True
        assert made["subjectPrefix"] is None

        # The receiver echoes the validation code: the listing says active after a refresh.
        wait_active(server, made["id"])
        page.get_by_role("button", name="Refresh").click()
        card = subs.locator("li", has_text=hook)
        expect(card.locator(".state")).to_have_text("active")
        expect(card).to_contain_text(made["id"])

        # A chat message reaches the receiver, signed with the secret typed into the page.
        _, _, chat, thread = pair_thread(server, "webhooks view", ("A", "B"))
        thread_id = thread.thread_id
        text = f"to the webhook {secrets.token_hex(4)}"
        thread.send_message(text)
        rec.wait(lambda: any(e["data"].get("messageBody") == text for e in rec.events("/explorer-hook")))
        [delivery] = [r for r in rec.deliveries("/explorer-hook")
                      if any(e["data"].get("messageBody") == text for e in r.events)]
        [event] = delivery.events
        assert event["eventType"] == f"{P}ChatMessageReceivedInThread" and event["data"]["threadId"] == thread_id
        expected = hmac.new(b"s3cret-from-the-page", delivery.body, hashlib.sha256).hexdigest()
        assert expected in delivery.headers.get("x-threadline-signature", ""), delivery.headers

        # A subscription whose only event is refused once is dead-lettered; the page lists and replays it.
        dead = subscribe(server, f"{rec.url}/dead", events=[f"{P}ChatThreadCreated"], maxDeliveryAttempts=1)
        wait_active(server, dead["id"])
        rec.plan.append(500)
        chat.create_chat_thread("to be dead-lettered")
        rec.wait(lambda: admin(server, "GET", f"/admin/webhooks/{dead['id']}/deadletters").json()["value"] != [],
                 timeout=30)
        page.get_by_role("button", name="Refresh").click()
        subs.locator("li", has_text=f"{rec.url}/dead").get_by_role("button", name="Dead letters").click()
        expect(page.get_by_role("heading", name=f"Dead letters of {rec.url}/dead")).to_be_visible()
        letters = page.get_by_role("list", name="Dead letters")
        expect(letters).to_contain_text(f"{P}ChatThreadCreated")
        assert page.evaluate(UNLABELLED) == []
        assert unreachable_by_keyboard(page) == []
        page.get_by_role("button", name="Replay").click()
        expect(page.get_by_role("status")).to_contain_text("Replay requested: 1 dead letter(s)")
        rec.wait(lambda: any(e["eventType"] == f"{P}ChatThreadCreated" for e in rec.events("/dead")))

        # Replay since a time, through the page: the rewound position is reported.
        page.get_by_label("Also redeliver events since").fill("not a date")
        page.get_by_role("button", name="Replay").click()
        expect(page.get_by_role("status")).to_have_text("The date is not valid.")
        page.get_by_label("Also redeliver events since").fill("2020-01-01T00:00:00Z")
        page.get_by_role("button", name="Replay").click()
        expect(page.get_by_role("status")).to_contain_text("redelivering from position")
        page.get_by_role("button", name="Back to webhooks").click()

        # A hostile subject prefix stays text; a receiver that does not echo the code leaves it pending
        # validation until its validationUrl is visited.
        rec.echo_validation = False
        page.get_by_label("Receiver URL").fill(f"{rec.url}/hostile")
        page.get_by_label("Subject prefix").fill(HOSTILE)
        page.get_by_role("button", name="Add subscription").click()
        hostile = subs.locator("li", has_text=f"{rec.url}/hostile")
        expect(hostile).to_contain_text(HOSTILE)
        expect(hostile.locator(".state")).to_have_text("pending validation")
        rec.wait(lambda: any(r.path == "/hostile" for r in rec.requests))
        asked = next(r for r in rec.requests if r.path == "/hostile")
        hostile_id = next(s["id"] for s in admin(server, "GET", "/admin/webhooks").json()["value"]
                          if s["url"] == f"{rec.url}/hostile")
        visited = requests.get(f"{server.http_endpoint}/admin/webhooks/{hostile_id}/validate",
                               params={"code": asked.json[0]["data"]["validationCode"]}, timeout=10)
        assert visited.status_code == 200, visited.text
        page.get_by_role("button", name="Refresh").click()
        expect(hostile.locator(".state")).to_have_text("active")
        assert page.locator("#view img").count() == 0 and page.evaluate("window.pwned") is None
        assert page.evaluate(UNLABELLED) == []
        assert unreachable_by_keyboard(page) == []
        page.screenshot(path=str(ARTIFACTS / f"explorer-webhooks-{engine}.png"), full_page=True)

        # Remove the first subscription from the page (by keyboard): the API no longer lists it.
        subs.get_by_role("button", name=f"Remove {hook}").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text(f"Removed {hook}")
        expect(subs).not_to_contain_text(hook)
        left = [s["url"] for s in admin(server, "GET", "/admin/webhooks").json()["value"]]
        assert hook not in left and f"{rec.url}/dead" in left

        # A narrow window: nothing scrolls sideways.
        page.set_viewport_size({"width": 360, "height": 800})
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the Webhooks view scrolls sideways on a narrow window ({width}px)"
        page.screenshot(path=str(ARTIFACTS / f"explorer-webhooks-narrow-{engine}.png"), full_page=True)
        assert not [p for p in problems if "Content Security Policy" in p or "Uncaught" in p], problems


@pytest.mark.parametrize("engine", ENGINES)
def test_webhook_admin_api_takes_the_explorer_session_and_its_csrf_token(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        session = ExplorerSession(server)
        # A write without the CSRF token, or with a wrong one, is refused and stores nothing.
        acs_error(session.post("/admin/webhooks", {"url": f"{rec.url}/a"}, csrf=None), 403, "CsrfTokenMismatch")
        acs_error(session.post("/admin/webhooks", {"url": f"{rec.url}/a"}, csrf="wrong"), 403, "CsrfTokenMismatch")
        acs_error(session.post("/admin/webhooks", {"url": f"{rec.url}/a"}, Origin="https://evil.example"),
                  403, "CrossOriginRequest")
        assert admin(server, "GET", "/admin/webhooks").json()["value"] == []
        # With it, the session adds, reads, lists and removes; HMAC-signed calls see the same model.
        added = session.post("/admin/webhooks", {"url": f"{rec.url}/a", "schema": "cloudevents", "batchSize": 3})
        assert added.status_code == 201, added.text
        sub = added.json()
        assert sub["schema"] == "cloudevents" and sub["batchSize"] == 3 and sub["status"] == "pending"
        wait_active(server, sub["id"])
        listed = session.get("/admin/webhooks").json()["value"]
        assert [s["id"] for s in listed] == [sub["id"]] and listed[0]["status"] == "active"
        assert isinstance(listed[0]["metrics"], dict)
        assert session.get(f"/admin/webhooks/{sub['id']}").json()["url"] == f"{rec.url}/a"
        assert session.get(f"/admin/webhooks/{sub['id']}/deadletters").json() == {"value": []}
        replayed = session.post(f"/admin/webhooks/{sub['id']}/:replay", {})
        assert replayed.status_code == 202 and replayed.json() == {"deadLettersReplayed": 0, "cursor": None}
        url = f"{server.http_endpoint}/admin/webhooks/{sub['id']}?api-version=2026-11-28"
        assert session.http.delete(url, timeout=10).status_code == 403  # no CSRF token
        gone = session.http.delete(url, headers={"X-Threadline-CSRF": session.csrf}, timeout=10)
        assert gone.status_code == 204, gone.text
        assert admin(server, "GET", "/admin/webhooks").json()["value"] == []
        # Without a session or a signature: 401, as the rest of /admin.
        stranger = requests.get(f"{server.http_endpoint}/admin/webhooks?api-version=2026-11-28", timeout=10)
        acs_error(stranger, 401)
