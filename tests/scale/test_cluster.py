"""Three server processes on one PostgreSQL database and one Redis, through the official SDKs."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from azure.communication.chat import (
    ChatClient,
    ChatParticipant,
    ChatThreadClient,
    CommunicationTokenCredential,
)
from azure.communication.chat.aio import ChatClient as AsyncChatClient
from azure.communication.chat.aio import CommunicationTokenCredential as AsyncCommunicationTokenCredential
from azure.communication.identity import CommunicationIdentityClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from ..conftest import RunningServer
from ..support import User
from .conftest import Cluster


def identity(cluster: Cluster, node: RunningServer) -> CommunicationIdentityClient:
    """The official identity client of one node (the key comes from the flags, not the data folder)."""
    return CommunicationIdentityClient.from_connection_string(
        f"endpoint={node.https_endpoint}/;accesskey={cluster.access_key}", connection_verify=node.cert_path
    )


def new_user(cluster: Cluster, node: RunningServer) -> User:
    identifier, token = identity(cluster, node).create_user_and_token(["chat"])
    return User(identifier, token.token)


def chat(node: RunningServer, user: User) -> ChatClient:
    return ChatClient(node.https_endpoint, CommunicationTokenCredential(user.token), connection_verify=node.cert_path)


def thread_client(node: RunningServer, user: User, thread_id: str) -> ChatThreadClient:
    return chat(node, user).get_chat_thread_client(thread_id, connection_verify=node.cert_path)


def post(node: RunningServer, user: User, path: str, body: dict[str, str], key: str) -> requests.Response:
    return requests.post(
        f"{node.http_endpoint}{path}?api-version=2024-03-07", json=body, timeout=10,
        headers={"Authorization": f"Bearer {user.token}", "repeatability-request-id": key},
    )


def test_concurrent_sends_through_three_nodes(trio: Cluster) -> None:
    made = trio
    a, b, c = made.nodes
    alice, bob = new_user(made, a), new_user(made, b)
    thread_id = chat(c, alice).create_chat_thread(
        "Busy", thread_participants=[ChatParticipant(identifier=bob.identifier)]
    ).chat_thread.id

    async def flood() -> list[str]:
        async def through(node: RunningServer, user: User, count: int) -> list[str]:
            client = AsyncChatClient(
                node.https_endpoint, AsyncCommunicationTokenCredential(user.token), connection_verify=node.cert_path
            )
            async with client, client.get_chat_thread_client(thread_id, connection_verify=node.cert_path) as thread:
                sends = [thread.send_message(f"{node.http_endpoint} {i}") for i in range(count)]
                return [r.id for r in await asyncio.gather(*sends)]

        batches = await asyncio.gather(through(a, alice, 20), through(b, bob, 20), through(c, alice, 20))
        return [mid for batch in batches for mid in batch]

    sent = asyncio.run(flood())
    assert len(sent) == len(set(sent)) == 60
    listed = list(thread_client(b, bob, thread_id).list_messages(results_per_page=100))
    texts = [m for m in listed if m.type == "text"]
    assert sorted(m.id for m in texts) == sorted(sent)
    sequence = sorted(int(m.sequence_id) for m in listed)
    assert sequence == list(range(1, 63))  # 2 system messages, then 60 gap-free
    by_sequence = [int(m.id) for m in sorted(listed, key=lambda m: int(m.sequence_id))]
    assert by_sequence == sorted(by_sequence)  # epoch-ms ids rise with sequence ids


def test_one_repeatability_id_on_two_nodes_writes_once(trio: Cluster) -> None:
    made = trio
    a, b, _ = made.nodes
    alice = new_user(made, a)
    with ThreadPoolExecutor(2) as pool:
        created = list(pool.map(
            lambda node: post(node, alice, "/chat/threads", {"topic": "Once"}, "create-1"), (a, b)
        ))
    assert [r.status_code for r in created] == [201, 201]
    thread_ids = {r.json()["chatThread"]["id"] for r in created}
    assert len(thread_ids) == 1
    (thread_id,) = thread_ids
    listed = [t.id for t in chat(b, alice).list_chat_threads()]
    assert listed == [thread_id]

    path = f"/chat/threads/{thread_id}/messages"
    with ThreadPoolExecutor(4) as pool:
        sent = list(pool.map(lambda node: post(node, alice, path, {"content": "once"}, "send-1"), (a, b, a, b)))
    assert [r.status_code for r in sent] == [201] * 4
    assert len({r.json()["id"] for r in sent}) == 1
    messages = list(thread_client(a, alice, thread_id).list_messages())
    assert [m.content.message for m in messages if m.type == "text"] == ["once"]


def test_revocation_and_removal_apply_on_every_node_at_once(trio: Cluster) -> None:
    made = trio
    a, b, c = made.nodes
    alice, bob, carol = new_user(made, a), new_user(made, b), new_user(made, c)
    thread_id = chat(a, alice).create_chat_thread(
        "Members", thread_participants=[ChatParticipant(identifier=u.identifier) for u in (bob, carol)]
    ).chat_thread.id
    for node in (b, c):
        assert thread_client(node, bob, thread_id).get_properties().topic == "Members"
        assert thread_client(node, carol, thread_id).get_properties().topic == "Members"

    identity(made, a).revoke_tokens(bob.identifier)
    for node in (b, c):
        with pytest.raises(ClientAuthenticationError):
            thread_client(node, bob, thread_id).get_properties()

    thread_client(a, alice, thread_id).remove_participant(carol.identifier)
    for node in (b, c):
        with pytest.raises(HttpResponseError) as denied:
            thread_client(node, carol, thread_id).send_message("still here?")
        assert denied.value.status_code == 403
    people = [p.identifier.properties["id"] for p in thread_client(c, alice, thread_id).list_participants()]
    assert people == [alice.id, bob.id]
