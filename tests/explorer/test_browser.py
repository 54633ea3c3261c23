"""The Explorer in real headless Chromium (Debian's), on both engines.

Signs in with the connection string, creates an identity, acts as it, opens a
thread, sends a message, and sees a message from another client (the official
SDK) arrive through the live view; the hostile-looking content stays text.
Screenshots go to ``tests/artifacts/`` (gitignored); the browser fixture is in ``conftest.py``, the
sign-in (:func:`.helpers.explorer`) in ``helpers.py``.
"""

from __future__ import annotations

import secrets
from contextlib import closing
from typing import Any

from azure.communication.chat import ChatMessageType, ChatParticipant
from azure.communication.identity import CommunicationUserIdentifier

from ..conftest import RunningServer
from ..support import new_user, official_chat
from .helpers import ARTIFACTS, UNLABELLED, explorer, sign_in, unreachable_by_keyboard


def test_explorer_end_to_end(server: RunningServer, browser: Any) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with explorer(browser, server.http_endpoint, server.connection_string, path="/explorer",
                  viewport={"width": 1200, "height": 1000},
                  permissions=["clipboard-read", "clipboard-write"]) as (page, problems):
        expect(page.get_by_role("heading", name="Identities")).to_be_visible()
        nav = page.get_by_role("navigation", name="Views")

        # Create an identity; its id and token are shown with copy buttons and the expiry.
        page.get_by_role("button", name="Create identity with a chat token").click()
        created = page.locator(".new-identity")
        expect(created).to_contain_text(f"8:acs:{server.resource_id}_")
        explorer_user = created.inner_text().strip()
        expect(page.get_by_role("list", name="Identities")).to_contain_text(explorer_user)
        page.get_by_role("button", name="Copy token").click()
        expect(page.get_by_role("button", name="Copied")).to_be_visible()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("#created .secret-text").inner_text() and copied.count(".") == 2
        assert page.evaluate(UNLABELLED) == []
        assert unreachable_by_keyboard(page) == []
        assert page.locator("#created time").get_attribute("datetime")

        # Another client (the official SDK) makes a thread with that identity and says hello.
        other = new_user(server)
        topic = f"Explorer e2e {secrets.token_hex(4)}"
        thread_id = official_chat(server, other).create_chat_thread(topic, thread_participants=[
            ChatParticipant(identifier=CommunicationUserIdentifier(explorer_user), display_name="Explorer user"),
            ChatParticipant(identifier=other.identifier, display_name="Other"),
        ]).chat_thread.id
        thread = official_chat(server, other).get_chat_thread_client(thread_id, connection_verify=server.cert_path)
        thread.send_message("hello before", sender_display_name="Other")

        # Act as the new identity (search it, then "Act as"): the live view connects with its token.
        page.get_by_label("Search ids").fill(explorer_user.rsplit("_", 1)[1])
        page.get_by_role("button", name="Search", exact=True).click()
        page.locator("li.card", has_text=explorer_user).get_by_role("button", name="Act as").click()
        expect(page.locator("#acting-id")).to_have_text(explorer_user)
        expect(page.locator("#live-state")).to_have_text("live view: connected")

        # Open the thread from the resource-wide list, searched by topic.
        nav.get_by_role("button", name="Threads").click()
        page.get_by_label("Topic contains").fill(topic)
        page.get_by_role("button", name="Search", exact=True).click()
        page.get_by_role("button", name=topic).click()
        expect(page.get_by_role("heading", name=topic)).to_be_visible()
        messages = page.get_by_role("list", name="Messages, newest first")
        expect(messages).to_contain_text("hello before")
        expect(messages).to_contain_text("participantAdded")

        # Send as the acting user through the chat API.
        page.get_by_label("Message", exact=True).fill("sent from the Explorer")
        page.get_by_role("button", name="Send", exact=True).click()
        expect(messages.locator("li").first).to_contain_text("sent from the Explorer")
        sent = [m for m in thread.list_messages() if m.type == "text"]
        assert sent[0].content.message == "sent from the Explorer"
        assert sent[0].sender.properties["id"] == explorer_user

        # Another client sends: it arrives through the live view, as text, never as markup.
        hostile = '<img src=x onerror="window.pwned=1"> live <b>bold</b>'
        thread.send_message(hostile, sender_display_name="Other")
        events = page.get_by_role("list", name="Live events")
        expect(events).to_contain_text("chatMessageReceived")
        expect(events).to_contain_text(hostile)
        expect(messages.locator("li").first).to_contain_text(hostile)
        assert page.locator(".messages img, .events img, .messages b").count() == 0
        assert page.evaluate("window.pwned") is None
        # An HTML message (sanitised by the server) is shown as its text, never as markup.
        rich = '<p>rich <a href="https://example.com">link</a></p>'
        thread.send_message(rich, chat_message_type=ChatMessageType.HTML)
        expect(messages.locator("li").first).to_contain_text("rich link")
        expect(events.locator("li").first).to_contain_text(f"from {other.id}: rich link")
        assert messages.locator("li").first.locator("p.body a, p.body p").count() == 0

        # Add a participant as the acting user, then remove it: the chat API's system messages follow.
        third = new_user(server)
        page.get_by_label("User id to add").fill(third.id)
        page.get_by_label("Display name").fill("Third")
        page.get_by_role("button", name="Add participant").click()
        members = page.get_by_role("list", name="Participants")
        expect(members).to_contain_text(third.id)
        assert {p.identifier.properties["id"] for p in thread.list_participants()} >= {third.id}
        members.locator("li", has_text=third.id).get_by_role("button", name="Remove").click()
        expect(members).not_to_contain_text(third.id)
        expect(messages).to_contain_text(f"Removed {third.id}")

        # The other client's read receipt shows through the live view; the event log survives re-renders.
        receipts = page.get_by_role("list", name="Read receipts")
        expect(receipts).to_contain_text("None.")
        thread.send_read_receipt(sent[0].id)
        expect(receipts).to_contain_text(other.id)
        expect(events).to_contain_text("readReceiptReceived")

        # Edit and delete the Explorer's own message; the thread shows both.
        own = messages.locator("li", has_text="sent from the Explorer")
        own.get_by_role("button", name="Edit").click()
        page.get_by_label("New text").fill("edited in the Explorer")
        page.get_by_role("button", name="Save").click()
        expect(messages).to_contain_text("edited in the Explorer")
        expect(messages.locator("li", has_text="edited in the Explorer")).to_contain_text("edited ")
        messages.locator("li", has_text="edited in the Explorer").get_by_role("button", name="Delete").click()
        expect(messages).to_contain_text("(deleted")
        expect(events).to_contain_text("chatMessageDeleted")
        expect(events).to_contain_text("chatMessageEdited")
        page.screenshot(path=str(ARTIFACTS / f"explorer-thread-{server.engine}.png"), full_page=True)
        assert page.evaluate(UNLABELLED) == []

        # Create a thread as the acting user: it opens, with the acting user as its only member.
        nav.get_by_role("button", name="Threads").click()
        page.get_by_label("New thread topic").fill(f"{topic} made here")
        page.get_by_role("button", name="Create thread as the acting user").click()
        expect(page.get_by_role("heading", name=f"{topic} made here")).to_be_visible()
        expect(page.get_by_role("list", name="Participants")).to_contain_text(explorer_user)

        # Server status, then a narrow window.
        nav.get_by_role("button", name="Server status").click()
        expect(page.get_by_role("heading", name="Server status")).to_be_visible()
        expect(page.locator("dl.pairs").first).to_contain_text(server.engine)
        expect(page.get_by_text("participantsPerThread")).to_be_visible()
        assert unreachable_by_keyboard(page) == []
        page.screenshot(path=str(ARTIFACTS / f"explorer-status-{server.engine}.png"), full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        nav.get_by_role("button", name="Threads").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Threads")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page scrolls sideways on a narrow window ({width}px)"
        page.screenshot(path=str(ARTIFACTS / f"explorer-narrow-{server.engine}.png"), full_page=True)
        assert not [p for p in problems if "Content Security Policy" in p or "Uncaught" in p], problems


def test_a_revoked_acting_token_is_renewed(server: RunningServer, browser: Any) -> None:
    from playwright.sync_api import expect

    from .helpers import signed

    owner = new_user(server)
    made = signed(server, "POST", "/admin/identities", {}).json()["identity"]["id"]
    topic = f"Renewal {secrets.token_hex(4)}"
    thread_id = official_chat(server, owner).create_chat_thread(topic, thread_participants=[
        ChatParticipant(identifier=CommunicationUserIdentifier(made), display_name="Made"),
    ]).chat_thread.id
    with explorer(browser, server.http_endpoint, server.access_key) as (page, _):
        page.get_by_label("Search ids").fill(made)
        page.keyboard.press("Enter")
        page.locator("li.card", has_text=made).get_by_role("button", name="Act as").click()
        expect(page.locator("#live-state")).to_have_text("live view: connected")
        page.get_by_role("navigation", name="Views").get_by_role("button", name="Threads").click()
        page.get_by_label("Topic contains").fill(topic)
        page.keyboard.press("Enter")
        page.get_by_role("button", name=topic).click()
        # The identity's tokens are revoked behind the Explorer's back: the stream closes (4003), a send gets 401.
        from ..support import identity_client

        identity_client(server).revoke_tokens(CommunicationUserIdentifier(made))
        expect(page.locator("#live-state")).to_have_text("live view: closed (4003)")
        page.get_by_label("Message", exact=True).fill("after revocation")
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("renewed")
        expect(page.locator("#live-state")).to_have_text("live view: connected")
        page.get_by_role("button", name="Send", exact=True).click()
        messages = page.get_by_role("list", name="Messages, newest first")
        expect(messages.locator("li").first).to_contain_text("after revocation")
        thread = official_chat(server, owner).get_chat_thread_client(thread_id, connection_verify=server.cert_path)
        assert [m.content.message for m in thread.list_messages() if m.type == "text"] == ["after revocation"]
        # A session that ends (here: its cookie gone) brings the sign-in form back, and stops acting.
        page.context.clear_cookies()
        # The live event of the send may already have refreshed the thread through /admin (and so hidden the
        # navigation): dispatch the click, which needs no visible button, so either order ends the same way.
        page.locator("#nav [data-view=threads]").dispatch_event("click")
        expect(page.get_by_role("alert")).to_contain_text("The session has ended")
        expect(page.get_by_label("Access key or connection string")).to_be_focused()
        expect(page.locator("#acting")).to_be_hidden()


def test_explorer_over_https(server: RunningServer, browser: Any) -> None:
    """Over HTTPS the cookie is Secure and the live view runs on wss:, under the same CSP."""
    from playwright.sync_api import expect

    # ignore_https_errors: the test CA is not in Chromium's store.
    with explorer(browser, server.https_endpoint, server.connection_string,
                  ignore_https_errors=True) as (page, _):
        page.get_by_role("button", name="Create identity with a chat token").click()
        made = page.locator(".new-identity").inner_text().strip()
        page.get_by_label("Search ids").fill(made)
        page.keyboard.press("Enter")
        page.locator("li.card", has_text=made).get_by_role("button", name="Act as").click()
        expect(page.locator("#live-state")).to_have_text("live view: connected")
        cookies = page.context.cookies()
        assert {c["path"] for c in cookies} == {"/admin", "/explorer"}
        assert all(c["secure"] and c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies)


def test_explorer_refuses_a_wrong_key(server: RunningServer, browser: Any) -> None:
    from playwright.sync_api import expect

    with explorer(browser, server.http_endpoint) as (page, _):
        sign_in(page, "d3Jvbmcga2V5IGZvciB0aGlzIHNlcnZlciAhISEhISE=")
        expect(page.get_by_role("alert")).to_contain_text("The access key is not valid.")
        expect(page.get_by_role("navigation", name="Views")).to_be_hidden()


def test_explorer_shows_and_sends_images(server: RunningServer, browser: Any) -> None:
    """An image another client attached shows in the thread (a blob: URL read with an admin-issued token,
    then the acting user's); one attached in the Explorer reaches another client byte for byte."""
    from playwright.sync_api import expect

    from threadline.chat import ChatAttachment, ChatClient, CommunicationTokenCredential

    from .helpers import DECODED, png, signed

    red, blue = png(3, 2, (200, 20, 20)), png(2, 5, (10, 30, 220))
    owner = new_user(server)
    member = signed(server, "POST", "/admin/identities", {}).json()["identity"]["id"]
    topic = f"Pictures {secrets.token_hex(4)}"
    client = ChatClient(server.https_endpoint, CommunicationTokenCredential(owner.token),
                        connection_verify=server.cert_path)
    thread_id = client.create_chat_thread(topic, thread_participants=[
        ChatParticipant(identifier=CommunicationUserIdentifier(member), display_name="Member"),
    ]).chat_thread.id
    thread = client.get_chat_thread_client(thread_id)
    uploaded = thread.upload_image(red, "red.png")
    thread.send_message("a red one", attachments=[ChatAttachment(id=uploaded.id, attachment_type="image")])
    with closing(client), explorer(browser, server.http_endpoint, server.connection_string,
                                   viewport={"width": 1000, "height": 900}) as (page, problems):
        page.get_by_role("navigation", name="Views").get_by_role("button", name="Threads").click()
        page.get_by_label("Topic contains").fill(topic)
        page.keyboard.press("Enter")
        page.get_by_role("button", name=topic).click()
        # Not acting as anyone: the image is read with a token the admin API issues to a member.
        messages = page.get_by_role("list", name="Messages, newest first")
        shown = messages.locator("li", has_text="a red one").get_by_role("img", name="red.png")
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=shown.element_handle())
        assert page.evaluate(DECODED, shown.element_handle()) == ["blob", 3, 2, [200, 20, 20, 255]]

        # Act as the member and send a message with an image chosen in the file field.
        page.get_by_role("list", name="Participants").locator("li", has_text=member) \
            .get_by_role("button", name="Act as").click()
        expect(page.locator("#live-state")).to_have_text("live view: connected")
        page.get_by_label("Message", exact=True).fill("a blue one")
        page.get_by_label("Attach an image").set_input_files(
            {"name": "blue.png", "mimeType": "image/png", "buffer": blue})
        page.get_by_role("button", name="Send", exact=True).click()
        mine = messages.locator("li").first
        expect(mine).to_contain_text("a blue one")
        own = mine.get_by_role("img", name="blue.png")
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=own.element_handle())
        assert page.evaluate(DECODED, own.element_handle()) == ["blob", 2, 5, [10, 30, 220, 255]]
        expect(page.get_by_label("Attach an image")).to_have_value("")
        expect(page.get_by_role("list", name="Live events")).to_contain_text(
            f"chatMessageReceived from {member}: a blue one")  # the sender named by the real-time identifier

        # The other client receives the message, its attachment and the very bytes.
        received = next(m for m in thread.list_messages() if m.type == "text")
        assert received.content.message == "a blue one" and received.sender.properties["id"] == member
        attached = received.content.attachments or []
        assert [(a.attachment_type, a.name) for a in attached] == [("image", "blue.png")]
        assert thread.get_image(attached[0].id) == blue
        # Every control on the thread view has a label and is reached with the Tab key.
        assert page.evaluate(UNLABELLED) == []
        assert unreachable_by_keyboard(page) == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"explorer-images-{server.engine}.png"), full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})  # the images and the file field fit a narrow window
        expect(own).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert not [p for p in problems if "Content Security Policy" in p or "Uncaught" in p], problems


def test_a_late_answer_for_an_earlier_view_does_not_replace_the_current_one(
    server: RunningServer, browser: Any,
) -> None:
    """Signed in, the Identities list is still loading when the user goes to Webhooks: Webhooks stays.

    The Identities answer is held back (Playwright's routing) until the Webhooks view is shown,
    then let through; the Explorer used to draw Identities over Webhooks when it came.
    """
    from playwright.sync_api import expect

    held: list[Any] = []
    with explorer(browser, server.http_endpoint) as (page, problems):
        def hold(route: Any) -> None:  # the request waits until the test continues it
            held.append(route)

        page.route("**/admin/identities?*", hold)
        sign_in(page, server.connection_string)
        nav = page.get_by_role("navigation", name="Views")
        expect(nav).to_be_visible()
        for _ in range(250):  # Playwright hands the request to the route while the page is waited on
            if held:
                break
            page.wait_for_timeout(20)
        assert len(held) == 1
        nav.get_by_role("button", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
        assert len(held) == 1
        with page.expect_response("**/admin/identities?*") as answered:
            held[0].continue_()
        assert answered.value.status == 200
        page.wait_for_load_state("networkidle")  # the late answer has been read and handled
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
        expect(page.get_by_role("heading", name="Identities")).to_have_count(0)
        # (the one console error is the 401 of the session check before signing in)
        assert not [p for p in problems if "Content Security Policy" in p or "Uncaught" in p], problems
