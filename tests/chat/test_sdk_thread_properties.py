"""The SDK's 2025-03-15 additions through both twins against a real server, on both engines:
thread metadata and retention policy on create, ``update_properties``, participant metadata
(also inside ``participantAdded`` messages), the default api-version and ``api_version=``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from threadline.chat import (
    ChatClient,
    ChatMessageType,
    ChatParticipant,
    ChatRetentionPolicy,
    ChatThreadClient,
    CommunicationTokenCredential,
    NoneRetentionPolicy,
    ThreadCreationDateRetentionPolicy,
)
from threadline.chat.aio import ChatClient as AsyncChatClient
from threadline.chat.aio import CommunicationTokenCredential as AsyncCredential

from ..conftest import RunningServer
from ..support import User, new_user

THIRTY = ThreadCreationDateRetentionPolicy(delete_thread_after_days=30)


def sync_client(server: RunningServer, user: User, **kw: Any) -> ChatClient:
    return ChatClient(server.https_endpoint, CommunicationTokenCredential(user.token),
                      connection_verify=server.cert_path, **kw)


def thread_client(server: RunningServer, user: User, thread_id: str, **kw: Any) -> ChatThreadClient:
    return sync_client(server, user).get_chat_thread_client(thread_id, connection_verify=server.cert_path, **kw)


def test_policy_models_compare_and_describe_themselves() -> None:
    assert ThreadCreationDateRetentionPolicy(delete_thread_after_days=30) == THIRTY
    assert ThreadCreationDateRetentionPolicy(delete_thread_after_days=31) != THIRTY
    assert NoneRetentionPolicy() == NoneRetentionPolicy() and NoneRetentionPolicy() != THIRTY
    assert (THIRTY.kind, NoneRetentionPolicy().kind) == ("threadCreationDate", "none")
    assert isinstance(THIRTY, ChatRetentionPolicy) and isinstance(NoneRetentionPolicy(), ChatRetentionPolicy)
    assert repr(THIRTY) == "ThreadCreationDateRetentionPolicy(kind='threadCreationDate', delete_thread_after_days=30)"


def test_sync_create_get_update_properties(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    client = sync_client(server, alice)
    guest = ChatParticipant(identifier=bob.identifier, display_name="Bob", metadata={"role": "guest"})
    created = client.create_chat_thread("sdk props", thread_participants=[guest], metadata={"team": "blue"},
                                        retention_policy=THIRTY)
    assert created.errors == []
    assert created.chat_thread.metadata == {"team": "blue"}
    assert created.chat_thread.retention_policy == THIRTY
    thread = thread_client(server, alice, created.chat_thread.id)
    got = thread.get_properties()
    assert (got.topic, got.metadata, got.retention_policy) == ("sdk props", {"team": "blue"}, THIRTY)

    thread.update_properties(topic="renamed", metadata={"team": None, "floor": "3"},
                             retention_policy=NoneRetentionPolicy())
    got = thread.get_properties()
    assert (got.topic, got.metadata, got.retention_policy) == ("renamed", {"floor": "3"}, NoneRetentionPolicy())
    thread.update_properties(retention_policy=ThreadCreationDateRetentionPolicy(delete_thread_after_days=90))
    got = thread.get_properties()
    assert (got.topic, got.metadata) == ("renamed", {"floor": "3"})
    assert got.retention_policy == ThreadCreationDateRetentionPolicy(delete_thread_after_days=90)

    # the same topic again writes no topicUpdated message
    thread.update_properties(topic="renamed", metadata={"floor": "4"})
    topics = [m.content.topic for m in thread.list_messages() if m.type == ChatMessageType.TOPIC_UPDATED]
    assert topics == ["renamed", "sdk props"]

    with pytest.raises(HttpResponseError) as refused:
        thread.update_properties(retention_policy=ThreadCreationDateRetentionPolicy(delete_thread_after_days=7))
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "BadRequest"
    assert thread.get_properties().retention_policy == ThreadCreationDateRetentionPolicy(delete_thread_after_days=90)
    with pytest.raises(TypeError):
        thread.update_properties(retention_policy={"kind": "none"})  # type: ignore[arg-type]

    # participant metadata: listed, and named in the participantAdded message with name and share time
    listed = {p.identifier.raw_id: p for p in thread.list_participants()}
    assert listed[bob.id].metadata == {"role": "guest"} and listed[alice.id].metadata is None
    added = next(m for m in thread.list_messages() if m.type == ChatMessageType.PARTICIPANT_ADDED)
    assert added.content is not None and added.content.participants is not None
    named = {p.identifier.raw_id: p for p in added.content.participants}
    assert (named[bob.id].display_name, named[bob.id].metadata) == ("Bob", {"role": "guest"})
    assert named[bob.id].share_history_time is not None and named[bob.id].share_history_time.year == 1970
    assert added.content.initiator is not None and added.content.initiator.raw_id == alice.id


def test_default_api_version_is_2025_03_15_and_older_ones_can_be_chosen(server: RunningServer) -> None:
    alice = new_user(server)
    client = sync_client(server, alice)
    created = client.create_chat_thread("versions", metadata={"k": "v"}, retention_policy=THIRTY)
    seen: list[str] = []

    def spy(request: Any) -> None:
        seen.append(re.search(r"api-version=([\w-]+)", request.http_request.url).group(1))  # type: ignore[union-attr]

    thread = thread_client(server, alice, created.chat_thread.id)
    thread.get_properties(raw_request_hook=spy)
    old = thread_client(server, alice, created.chat_thread.id, api_version="2024-03-07")
    props = old.get_properties(raw_request_hook=spy)
    assert seen == ["2025-03-15", "2024-03-07"]
    assert (props.metadata, props.retention_policy) == (None, None), "2024-03-07 has neither"


def test_aio_create_and_update_properties(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def main() -> None:
        async with AsyncChatClient(server.https_endpoint, AsyncCredential(alice.token),
                                   connection_verify=server.cert_path) as client:
            created = await client.create_chat_thread(
                "aio props", thread_participants=[ChatParticipant(identifier=bob.identifier, metadata={"r": "1"})],
                metadata={"a": "1"}, retention_policy=NoneRetentionPolicy(),
            )
            assert (created.chat_thread.metadata, created.chat_thread.retention_policy) == (
                {"a": "1"}, NoneRetentionPolicy())
            async with client.get_chat_thread_client(created.chat_thread.id) as thread:
                await thread.update_properties(topic="aio renamed", retention_policy=THIRTY)
                got = await thread.get_properties()
                assert (got.topic, got.metadata, got.retention_policy) == ("aio renamed", {"a": "1"}, THIRTY)
                members = {p.identifier.raw_id: p.metadata async for p in thread.list_participants()}
                assert members == {alice.id: None, bob.id: {"r": "1"}}
                with pytest.raises(HttpResponseError) as refused:
                    await thread.update_properties(
                        retention_policy=ThreadCreationDateRetentionPolicy(delete_thread_after_days=91))
                assert refused.value.status_code == 400

    asyncio.run(main())


@pytest.mark.parametrize("mode", ["http", "https"])
def test_the_thread_properties_sample_runs(server: RunningServer, mode: str) -> None:
    from .test_samples import run_sample, sample_env

    result = run_sample("thread_properties_sample.py", sample_env(server, mode))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("created: support case 42 {'case': '42'} ThreadCreationDateRetentionPolicy("
                        "kind='threadCreationDate', delete_thread_after_days=30)")
    assert lines[1] == "updated: support case 42 (closed) {'status': 'closed'} NoneRetentionPolicy(kind='none')"
    assert sorted(lines[2:4]) == ["participant: Agent {'role': 'agent'}", "participant: None None"]
    assert lines[4] == ("async updated: standup {'team': 'blue'} ThreadCreationDateRetentionPolicy("
                        "kind='threadCreationDate', delete_thread_after_days=90)")
    assert "Traceback" not in result.stderr


def test_realtime_events_carry_metadata_and_retention(server: RunningServer) -> None:
    from threadline.chat import (
        ChatEvent,
        ChatThreadCreatedEvent,
        ChatThreadDeletedEvent,
        ChatThreadPropertiesUpdatedEvent,
        ParticipantsAddedEvent,
    )

    alice, bob, carol = new_user(server), new_user(server), new_user(server)

    async def main() -> list[ChatEvent]:
        seen: list[ChatEvent] = []
        async with AsyncChatClient(server.http_endpoint, AsyncCredential(bob.token)) as listener:
            for name in ("chatThreadCreated", "chatThreadPropertiesUpdated", "participantsAdded", "chatThreadDeleted"):
                listener.on(name, seen.append)
            await listener.start_realtime_notifications()
            client = sync_client(server, alice)
            created = await asyncio.to_thread(
                client.create_chat_thread, "live props", metadata={"k": "v"}, retention_policy=THIRTY,
                thread_participants=[ChatParticipant(identifier=bob.identifier, display_name="Bob",
                                                     metadata={"role": "b"})],
            )
            thread = thread_client(server, alice, created.chat_thread.id)
            await asyncio.to_thread(thread.update_properties, metadata={"k": None, "x": "y"},
                                    retention_policy=NoneRetentionPolicy())
            await asyncio.to_thread(thread.add_participants, [
                ChatParticipant(identifier=carol.identifier, display_name="Carol", metadata={"role": "c"})])
            await asyncio.to_thread(client.delete_chat_thread, created.chat_thread.id)
            deadline = asyncio.get_running_loop().time() + 10
            while not any(isinstance(e, ChatThreadDeletedEvent) for e in seen):
                assert asyncio.get_running_loop().time() < deadline, [type(e) for e in seen]
                await asyncio.sleep(0.02)
        return seen

    seen = asyncio.run(main())
    assert [type(e) for e in seen] == [
        ChatThreadCreatedEvent, ChatThreadPropertiesUpdatedEvent, ParticipantsAddedEvent, ChatThreadDeletedEvent]
    created, updated, added, _ = seen
    assert isinstance(created, ChatThreadCreatedEvent)
    assert (created.properties.topic, created.properties.metadata) == ("live props", {"k": "v"})
    assert created.retention_policy == THIRTY
    bob_in = next(p for p in created.participants if p.identifier.raw_id == bob.id)
    assert (bob_in.display_name, bob_in.metadata) == ("Bob", {"role": "b"})
    assert isinstance(updated, ChatThreadPropertiesUpdatedEvent)
    assert (updated.properties.topic, updated.properties.metadata) == ("live props", {"x": "y"})
    assert updated.retention_policy == NoneRetentionPolicy()
    assert isinstance(added, ParticipantsAddedEvent)
    assert [(p.display_name, p.metadata) for p in added.participants_added] == [("Carol", {"role": "c"})]


def test_request_bodies_of_the_additions() -> None:
    import json

    from threadline.chat import CommunicationUserIdentifier
    from threadline.chat._requests import ChatRequests, ChatThreadRequests

    user = CommunicationUserIdentifier("8:acs:r_u1")
    create = ChatRequests("2025-03-15").create_chat_thread(
        "t", [ChatParticipant(identifier=user, metadata={"m": "1"})], "tok", metadata={"k": "v"},
        retention_policy=THIRTY,
    )
    assert json.loads(create.body or b"") == {
        "topic": "t",
        "participants": [{"communicationIdentifier": {"rawId": "8:acs:r_u1", "communicationUser": {"id": "8:acs:r_u1"}},
                          "metadata": {"m": "1"}}],
        "metadata": {"k": "v"},
        "retentionPolicy": {"kind": "threadCreationDate", "deleteThreadAfterDays": 30},
    }
    thread = ChatThreadRequests("19:abc@thread.v2", "2025-03-15")
    patch = thread.update_properties("new", {"gone": None, "k": "v"}, NoneRetentionPolicy())
    request = patch.request("https://acs.example.com")
    assert (request.method, request.url) == (
        "PATCH", "https://acs.example.com/chat/threads/19:abc@thread.v2?api-version=2025-03-15")
    assert request.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.body or b"") == {"topic": "new", "metadata": {"gone": None, "k": "v"},
                                             "retentionPolicy": {"kind": "none"}}
    assert json.loads(thread.update_properties(None, None, None).body or b"") == {}
    assert json.loads(thread.update_properties(None, None, THIRTY).body or b"") == {
        "retentionPolicy": {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}}
    with pytest.raises(TypeError):
        thread.update_properties(None, None, "none")  # type: ignore[arg-type]
