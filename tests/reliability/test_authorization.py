"""The authorization matrix: every operation as every kind of caller, with the exact ACS status and code.

Each case builds its own small world (a thread with members, a message from
each of two members, a removed member, a deleted user, a revoked token...)
so destructive operations never disturb another case.

The "windowed member" is in the thread with a ``shareHistoryTime`` in 2100:
every message is outside its window, so it gets 404 for each of them and lists
that name none (``test_share_history.py`` covers a window between messages,
and the real-time paths).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from threadline.identity.tokens import TokenIssuer, derive_signing_key

from ..conftest import RunningServer
from .helpers import Chat, ChatUser, identifier, identity_request, make_user, q, server_key


@dataclass
class World:
    """A thread, its members and the credentials of every kind of caller."""

    server: RunningServer
    owner: ChatUser
    member: ChatUser
    newcomer: ChatUser
    thread_id: str
    owner_message: str
    member_message: str
    tokens: dict[str, str | None]

    def chat(self, principal: str) -> Chat:
        return Chat(self.server.http_endpoint, self.tokens[principal])


def tamper(token: str, user_id: str) -> str:
    """The token with its payload's user changed and the signature kept."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["skypeid"] = user_id.removeprefix("8:")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


def build(server: RunningServer) -> World:
    key = server_key(server)
    owner, member, newcomer = make_user(server), make_user(server), make_user(server)
    outsider, removed, deleted, revoked = (make_user(server) for _ in range(4))
    owner_chat = Chat(server.http_endpoint, owner.token)
    thread_id = owner_chat.create_thread("matrix", [member.id, removed.id, deleted.id, revoked.id])
    owner_message = owner_chat.send(thread_id, "from the owner")
    member_chat = Chat(server.http_endpoint, member.token)
    member_message = member_chat.send(thread_id, "from the member")
    read = member_chat.call("POST", f"/chat/threads/{q(thread_id)}/readReceipts", {"chatMessageId": owner_message})
    assert read.status_code == 200, read.text
    windowed = make_user(server)
    window = {"communicationIdentifier": identifier(windowed.id), "shareHistoryTime": "2100-01-01T00:00:00Z"}
    joined = owner_chat.call("POST", f"/chat/threads/{q(thread_id)}/participants/:add", {"participants": [window]})
    assert joined.status_code == 201, joined.text
    gone = owner_chat.call("POST", f"/chat/threads/{q(thread_id)}/participants/:remove", identifier(removed.id))
    assert gone.status_code == 204
    assert identity_request(server.http_endpoint, key, "DELETE", f"/identities/{q(deleted.id)}").status_code == 204
    revoke = identity_request(server.http_endpoint, key, "POST", f"/identities/{q(revoked.id)}/:revokeAccessTokens")
    assert revoke.status_code == 204
    issuer = TokenIssuer(derive_signing_key(key), server.resource_id)
    expired, _ = issuer.issue(member.id, ["chat"], 60, 0, now=time.time() - 2 * 3600)
    tokens: dict[str, str | None] = {
        "participant": member.token,
        "message sender": member.token,
        "other participant": member.token,
        "non-participant": outsider.token,
        "windowed member": windowed.token,
        "removed participant": removed.token,
        "deleted user": deleted.token,
        "revoked token": revoked.token,
        "expired token": expired,
        "tampered token": tamper(member.token, owner.id),
        "no credentials": None,
    }
    return World(server, owner, member, newcomer, thread_id, owner_message, member_message, tokens)


Op = Callable[[World, Chat, str], requests.Response]


def _thread(w: World) -> str:
    return f"/chat/threads/{q(w.thread_id)}"


def _message(w: World, principal: str) -> str:
    """The message a principal acts on: its own for the sender, the owner's for everyone else."""
    return w.member_message if principal == "message sender" else w.owner_message


MERGE = {"Content-Type": "application/merge-patch+json"}

OPERATIONS: dict[str, tuple[Op, int]] = {
    "create_thread": (lambda w, c, p: c.call("POST", "/chat/threads", {"topic": "new"}), 201),
    "list_threads": (lambda w, c, p: c.call("GET", "/chat/threads"), 200),
    "get_thread": (lambda w, c, p: c.call("GET", _thread(w)), 200),
    "update_thread": (lambda w, c, p: c.call("PATCH", _thread(w), {"topic": "renamed"}, headers=MERGE), 204),
    "delete_thread": (lambda w, c, p: c.call("DELETE", _thread(w)), 204),
    "send_message": (lambda w, c, p: c.call("POST", _thread(w) + "/messages", {"content": "hi"}), 201),
    "list_messages": (lambda w, c, p: c.call("GET", _thread(w) + "/messages"), 200),
    "get_message": (lambda w, c, p: c.call("GET", f"{_thread(w)}/messages/{_message(w, p)}"), 200),
    "update_message": (
        lambda w, c, p: c.call("PATCH", f"{_thread(w)}/messages/{_message(w, p)}", {"content": "x"}, headers=MERGE),
        204,
    ),
    "delete_message": (lambda w, c, p: c.call("DELETE", f"{_thread(w)}/messages/{_message(w, p)}"), 204),
    "list_participants": (lambda w, c, p: c.call("GET", _thread(w) + "/participants"), 200),
    "add_participants": (
        lambda w, c, p: c.call(
            "POST", _thread(w) + "/participants/:add",
            {"participants": [{"communicationIdentifier": identifier(w.newcomer.id)}]},
        ),
        201,
    ),
    "remove_participant": (
        lambda w, c, p: c.call("POST", _thread(w) + "/participants/:remove", identifier(w.member.id)), 204,
    ),
    "send_read_receipt": (
        lambda w, c, p: c.call("POST", _thread(w) + "/readReceipts", {"chatMessageId": w.owner_message}), 200,
    ),
    "list_read_receipts": (lambda w, c, p: c.call("GET", _thread(w) + "/readReceipts"), 200),
    "send_typing": (lambda w, c, p: c.call("POST", _thread(w) + "/typing", {}), 200),
}

UNAUTHORIZED = ("expired token", "revoked token", "tampered token", "deleted user", "no credentials")
NO_THREAD_NEEDED = ("create_thread", "list_threads")
MESSAGE_OWNED = ("update_message", "delete_message")
#: Operations on one message: a member whose window does not hold it is told it does not exist.
ONE_MESSAGE = ("get_message", "send_read_receipt", *MESSAGE_OWNED)


def expected(operation: str, principal: str) -> tuple[int, str | None]:
    """The ACS status (and error code) for an operation called by a principal."""
    success = OPERATIONS[operation][1]
    if principal in UNAUTHORIZED:
        return 401, "Unauthorized"
    if operation in NO_THREAD_NEEDED:
        return success, None  # any valid user may create and list their own threads
    if principal in ("non-participant", "removed participant"):
        return 403, "Forbidden"
    if operation in MESSAGE_OWNED and principal == "other participant":
        return 403, "Forbidden"  # only the sender may edit or delete a message
    if operation in ONE_MESSAGE and principal == "windowed member":
        return 404, "NotFound"
    return success, None


CASES = [
    (operation, principal)
    for operation in OPERATIONS
    for principal in ("participant", "windowed member", "non-participant", "removed participant", *UNAUTHORIZED)
    if operation not in MESSAGE_OWNED
] + [
    (operation, principal)
    for operation in MESSAGE_OWNED
    for principal in (
        "message sender", "other participant", "windowed member", "non-participant", "removed participant",
        *UNAUTHORIZED,
    )
]


@pytest.mark.parametrize(("operation", "principal"), CASES, ids=[f"{o}-{p}".replace(" ", "_") for o, p in CASES])
def test_chat_operation(open_server: RunningServer, operation: str, principal: str) -> None:
    world = build(open_server)
    answer = OPERATIONS[operation][0](world, world.chat(principal), principal)
    status, code = expected(operation, principal)
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["error"]["code"] == code
        assert answer.headers["x-ms-error-code"] == code
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
    if principal == "windowed member" and operation in ("list_messages", "list_read_receipts"):
        listed = answer.json()["value"]
        assert not {world.owner_message, world.member_message} & {m.get("id") for m in listed}
        assert not {world.owner_message, world.member_message} & {m.get("chatMessageId") for m in listed}
        assert all(m["type"] not in ("text", "html") for m in listed)


def test_refused_callers_changed_nothing(open_server: RunningServer) -> None:
    """After every refused write the thread is exactly as it was."""
    world = build(open_server)
    owner = Chat(open_server.http_endpoint, world.owner.token)

    def snapshot() -> Any:
        thread = owner.call("GET", _thread(world)).json()
        messages = [(m["id"], m["type"], m.get("content"), m.get("deletedOn")) for m in owner.messages(world.thread_id)]
        members = owner.follow(_thread(world) + "/participants", 200)
        receipts = owner.follow(_thread(world) + "/readReceipts", 200)
        return thread, messages, members, receipts

    before = snapshot()
    for principal in ("non-participant", "removed participant", *UNAUTHORIZED):
        for operation, (call, _) in OPERATIONS.items():
            if operation not in NO_THREAD_NEEDED:
                answer = call(world, world.chat(principal), principal)
                assert answer.status_code in (401, 403), (operation, principal, answer.status_code)
    for operation in MESSAGE_OWNED:
        assert OPERATIONS[operation][0](world, world.chat("other participant"), "other participant").status_code == 403
    assert snapshot() == before


# -- identity ----------------------------------------------------------------------------------------


def identity_ops(user: ChatUser) -> list[tuple[str, str, dict[str, Any] | None, int]]:
    uid = q(user.id)
    return [
        ("POST", "/identities", {}, 201),
        ("POST", f"/identities/{uid}/:issueAccessToken", {"scopes": ["chat"]}, 200),
        ("POST", f"/identities/{uid}/:revokeAccessTokens", None, 204),
        ("DELETE", f"/identities/{uid}", None, 204),
    ]


@pytest.mark.parametrize("principal", ["access key", "wrong key", "no credentials", "user token"])
def test_identity_operations(open_server: RunningServer, principal: str) -> None:
    user = make_user(open_server)
    for method, path, body, success in identity_ops(user):
        base = open_server.http_endpoint
        if principal == "access key":
            answer = identity_request(base, server_key(open_server), method, path, body)
        elif principal == "wrong key":
            answer = identity_request(base, b"not the key at all, 32 bytes..!", method, path, body)
        else:
            headers = {"Content-Type": "application/json"}
            if principal == "user token":
                headers["Authorization"] = f"Bearer {user.token}"
            answer = requests.request(method, f"{base}{path}?api-version=2023-10-01", headers=headers,
                                      data=json.dumps(body).encode() if body is not None else b"", timeout=10)
        if principal == "access key":
            assert answer.status_code == success, (path, answer.text)
        else:
            assert answer.status_code == 401, (path, answer.text)
            assert answer.json()["error"]["code"] == "Unauthorized"
    if principal != "access key":  # nothing was done: the user's token still works
        assert Chat(open_server.http_endpoint, user.token).call("GET", "/chat/threads").status_code == 200
