"""One event to many browser sessions: the body is encoded once per (event, user), the envelope per session.

A notification's body depends on the event and its recipient only; the Trouter request around it
(request id, ``url`` naming the session, ``MS-CV``) is the session's. So a user's sessions share one
encoded body, another user gets their own, and every frame still decodes as the SDK reads it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import msgspec

from tests.conftest import RunningServer
from tests.realtime.helpers import make_thread, thread_client
from tests.support import new_user
from threadline.identity.tokens import TokenIssuer, derive_signing_key
from threadline.server.events import LocalHub
from threadline.server.realtime.browser.manager import BrowserOptions, BrowserRealtime
from threadline.server.services.identity import IdentityService
from threadline.store.records import Event
from threadline.store.sqlite import SqliteStore

from .test_encoding import MESSAGE, A, B, T
from .trouter import connect


def _manager(tmp_path: Path) -> BrowserRealtime:
    """A real manager; encoding reads no row, so its store is never opened."""
    store = SqliteStore(tmp_path / "unused.sqlite")
    issuer = TokenIssuer(derive_signing_key(b"k" * 32), "res")
    return BrowserRealtime(store, LocalHub(), IdentityService(store, issuer, "res"), issuer, BrowserOptions())


def _body(raw: msgspec.Raw | None) -> dict[str, object]:
    """The notification body inside the encoded JSON string."""
    assert raw is not None
    decoded: dict[str, object] = json.loads(json.loads(bytes(raw)))
    return decoded


def test_the_body_is_encoded_once_per_event_and_user(tmp_path: Path) -> None:
    manager = _manager(tmp_path)
    event = Event(7, T, "chatMessageReceived", msgspec.json.encode(MESSAGE), 1, (A, B))
    for_a = manager.notification(event, A)
    assert manager.notification(event, A) is for_a  # A's other sessions reuse the very bytes
    assert _body(for_a)["recipientMri"] == A and _body(for_a)["messageBody"] == MESSAGE["message"]
    for_b = manager.notification(event, B)
    assert for_b is not for_a and _body(for_b)["recipientMri"] == B
    assert {k: v for k, v in _body(for_b).items() if k != "recipientMri"} == \
        {k: v for k, v in _body(for_a).items() if k != "recipientMri"}
    # Another event (even with the same payload) is encoded anew; an unknown type has no notification.
    again = Event(8, T, "chatMessageReceived", msgspec.json.encode(MESSAGE), 1, (A,))
    assert manager.notification(again, A) is not for_a and bytes(manager.notification(again, A) or b"") == \
        bytes(for_a or b"")
    assert manager.notification(Event(9, T, "streamingChatMessageStarted", b"{}", 1, (A,)), A) is None
    assert manager.notification(Event(10, T, "chatMessageReceived", b"[1]", 1, (A,)), A) is None


def test_a_users_sessions_get_the_same_body_in_their_own_envelopes(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            first, second = await connect(http, server, alice.token), await connect(http, server, alice.token)
            other = await connect(http, server, bob.token)
            thread_id = await asyncio.to_thread(make_thread, server, bob, alice, topic="fan-out")
            sent = await asyncio.to_thread(thread_client(server, bob, thread_id).send_message, "to every tab ☃")
            for client in (first, second, other):
                await client.wait_for(lambda cl: any(n.get("messageId") == sent.id for n in cl.bodies(200)))
            frames = [next(json.loads(p[4:]) for p in client.packets
                           if p.startswith("3:::") and sent.id in json.loads(p[4:])["body"])
                      for client in (first, second, other)]
            # Alice's two sessions: the same body text, byte for byte, in envelopes naming each session.
            assert frames[0]["body"] == frames[1]["body"]
            assert json.loads(frames[0]["body"])["recipientMri"] == alice.id
            urls = [f["url"] for f in frames]
            assert urls[0] != urls[1] and all(u.endswith("/chat") for u in urls)
            assert [u.rsplit("/", 2)[-2] for u in urls[:2]] == [
                c.allocation["connectparams"]["sr"] for c in (first, second)]
            assert frames[0]["headers"]["MS-CV"] != frames[1]["headers"]["MS-CV"]
            # Bob's own session: his body, the same message.
            bobs = json.loads(frames[2]["body"])
            assert bobs["recipientMri"] == bob.id and bobs["messageBody"] == "to every tab ☃"
            for client in (first, second, other):
                await client.close()

    asyncio.run(scenario())
