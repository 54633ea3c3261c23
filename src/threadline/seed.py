"""``threadline seed``: demo identities and a thread to start from, with ready-to-paste snippets.

Seeding is idempotent: the demo identities have ids derived from the
resource id (so the same ones every time), and the demo thread is found by
its topic among Alice's threads before one is made. Each run issues fresh
tokens. It writes through the services, exactly as the API would, to the
database the settings name (while the server runs or not).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from threadline.identity.tokens import TokenIssuer, derive_signing_key
from threadline.protocol.times import now_ms
from threadline.protocol.wire import CommunicationUser, Identifier, Participant
from threadline.server.events import LocalHub
from threadline.server.preflight import endpoints, open_checked
from threadline.server.services.actor import Actor
from threadline.server.services.identity import IdentityService
from threadline.server.services.messages import MessageService
from threadline.server.services.threads import ThreadService
from threadline.server.settings import Settings
from threadline.store.records import UserRecord

__all__ = ["DEMO_TOPIC", "Seeded", "render", "render_json", "seed"]

#: The topic the demo thread is found by.
DEMO_TOPIC = "Threadline demo"
_PEOPLE = ("Alice", "Bob")
_MESSAGES = (
    ("Alice", "Hi Bob! This thread was made by `threadline seed`."),
    ("Bob", "Hi Alice. Real-time events arrive on /chat/realtime."),
    ("Alice", "Open samples/realtime_chat.py to chat from two terminals."),
)
_NAMESPACE = uuid.UUID("5f0c6a43-8f0e-4b5e-9d59-54c1b1a4e2d1")


@dataclass(slots=True)
class Seeded:
    """What ``seed`` made (or found) and how to use it."""

    users: list[dict[str, Any]] = field(default_factory=list)
    thread_id: str = ""
    created: bool = False
    http: str = ""
    https: str = ""
    access_key: str = ""
    ca: str = ""

    def as_json(self) -> dict[str, Any]:
        """The machine-readable form printed by ``--json``."""
        return {
            "users": self.users,
            "thread": {"id": self.thread_id, "topic": DEMO_TOPIC, "created": self.created},
            "endpoints": {"http": self.http, "https": self.https},
            "connectionStrings": {
                "http": f"endpoint={self.http}/;accesskey={self.access_key}",
                "https": f"endpoint={self.https}/;accesskey={self.access_key}",
            },
            "caCertificate": self.ca,
        }


def _demo_id(resource_id: str, name: str) -> str:
    return f"8:acs:{resource_id}_{uuid.uuid5(_NAMESPACE, f'{resource_id}/{name}')}"


async def seed(settings: Settings, minutes: int = 1440) -> Seeded:
    """Make (or find) the demo identities and thread, and issue their tokens.

    Args:
        settings: the settings (prepared here).
        minutes: the tokens' lifetime.

    Returns:
        What was seeded.

    Raises:
        SetupError: the database cannot be opened or belongs to another key.
    """
    settings = settings.prepared()
    resource = settings.resource_id
    assert resource is not None
    store = await open_checked(settings)
    try:
        issuer = TokenIssuer(derive_signing_key(settings.key_bytes), resource)
        identity = IdentityService(store, issuer, resource)
        hub = LocalHub()
        threads = ThreadService(store, hub, settings.limits, resource)
        messages = MessageService(store, hub, settings.limits)
        done = Seeded(access_key=settings.access_key or "", ca=str((settings.data_dir / "tls" / "ca.pem").resolve()))
        done.http, done.https = endpoints(settings)
        ids: dict[str, str] = {}
        for name in _PEOPLE:
            user_id = ids[name] = _demo_id(resource, name)
            if await store.get_user(user_id) is None:
                await store.create_user(UserRecord(user_id, now_ms()))
            issued = await identity.issue(user_id, ["chat"], minutes)
            expires = datetime.fromtimestamp(issued.expires_at, UTC).isoformat().replace("+00:00", "Z")
            done.users.append({"name": name, "id": user_id, "token": issued.token, "expiresOn": expires})
        alice = Actor(ids["Alice"])
        page = await threads.list_threads(alice, page_size=200, start_time=None, cursor=None)
        found = [t for t in page.items if t.topic == DEMO_TOPIC and t.deleted_ms is None]
        if found:
            done.thread_id = found[0].id
        else:
            members = [Participant(Identifier(communication_user=CommunicationUser(ids[n])), display_name=n)
                       for n in _PEOPLE]
            created = await threads.create(alice, DEMO_TOPIC, members)
            done.thread_id, done.created = created.thread.id, True
            for sender, text in _MESSAGES:
                await messages.send(Actor(ids[sender]), done.thread_id, text, kind="text",
                                    sender_display_name=sender, metadata=None, repeatability_id=None)
        return done
    finally:
        await store.close()


def render(done: Seeded) -> str:
    """The human-readable report: tokens, connection strings, Python and JavaScript snippets."""
    alice = done.users[0]
    state = "made" if done.created else "already there"
    lines = [f"Demo data in place (thread {state}; run again any time for fresh tokens).", ""]
    for user in done.users:
        lines.append(f"  {user['name']:<6} {user['id']}")
        lines.append(f"         token: {user['token']}")
    lines += [
        f"  thread {done.thread_id}  \"{DEMO_TOPIC}\"",
        "",
        "Connection strings:",
        f"  https (official SDKs):         endpoint={done.https}/;accesskey={done.access_key}",
        f"  http  (threadline.chat only):  endpoint={done.http}/;accesskey={done.access_key}",
        "",
        "Python, threadline.chat over plain HTTP (run with .venv/bin/python):",
        "",
        "from threadline.chat import ChatClient, CommunicationTokenCredential",
        "",
        f"chat = ChatClient(\"{done.http}\", CommunicationTokenCredential(\"{alice['token']}\"))",
        f"thread = chat.get_chat_thread_client(\"{done.thread_id}\")",
        "for message in thread.list_messages():          # newest first",
        "    if message.type == \"text\":",
        "        print(message.sender_display_name, message.content.message)",
        "",
        f"JavaScript, @azure/communication-chat over HTTPS (run with NODE_EXTRA_CA_CERTS={done.ca}):",
        "",
        'import { ChatClient } from "@azure/communication-chat";',
        'import { AzureCommunicationTokenCredential } from "@azure/communication-common";',
        "",
        f"const chat = new ChatClient(\"{done.https}\", new AzureCommunicationTokenCredential(\"{alice['token']}\"));",
        f"const thread = chat.getChatThreadClient(\"{done.thread_id}\");",
        "for await (const message of thread.listMessages()) {   // newest first",
        "  if (message.type === \"text\") console.log(message.senderDisplayName, message.content?.message);",
        "}",
    ]
    return "\n".join(lines)


def render_json(done: Seeded) -> str:
    """The ``--json`` output."""
    return json.dumps(done.as_json(), indent=2)

