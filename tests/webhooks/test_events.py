"""Every chat event type, in both schemas, parsed by ``azure-eventgrid`` (both engines).

One subscription per schema receives the events of a full thread life: create, message,
edit, delete, retitle, add, remove, delete the thread. Each event must parse with
``EventGridEvent.from_dict`` / ``CloudEvent.from_dict``, carry a type of ``SystemEventNames``,
the ACS subject and data fields, and follow the fan-out rule.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from azure.communication.chat import ChatParticipant
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent, SystemEventNames

from ..conftest import ENGINES
from ..support import new_user, official_chat, pair_thread
from .helpers import subscribe, wait_active, webhook_server
from .receiver import running_receiver

P = "Microsoft.Communication."
SYSTEM_TYPES = {e.value for e in SystemEventNames}


def _life(server: Any) -> dict[str, Any]:
    """Play a thread's whole life with three members, then a fourth added and removed."""
    alice, bob, carol, dave = (new_user(server) for _ in range(4))
    chat = official_chat(server, alice)
    created = chat.create_chat_thread("webhooks", thread_participants=[
        ChatParticipant(identifier=alice.identifier, display_name="Alice"),
        ChatParticipant(identifier=bob.identifier, display_name="Bob"),
        ChatParticipant(identifier=carol.identifier, display_name="Carol"),
    ])
    thread_id = created.chat_thread.id
    thread = chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    message_id = thread.send_message("hello", sender_display_name="Alice", metadata={"k": "v"}).id
    thread.update_message(message_id, content="hello, edited")
    thread.delete_message(message_id)
    thread.update_topic("renamed")
    thread.add_participants([ChatParticipant(identifier=dave.identifier, display_name="Dave")])
    thread.remove_participant(dave.identifier)
    chat.delete_chat_thread(thread_id)
    return {"thread": thread_id, "message": message_id, "alice": alice.id, "bob": bob.id, "carol": carol.id,
            "dave": dave.id}


def _expected(ids: dict[str, Any]) -> Counter[str]:
    """Thread-level once; user-level once per member except the actor (Alice)."""
    return Counter({
        P + "ChatThreadCreated": 1, P + "ChatThreadCreatedWithUser": 2,
        P + "ChatMessageReceivedInThread": 1, P + "ChatMessageReceived": 2,
        P + "ChatMessageEditedInThread": 1, P + "ChatMessageEdited": 2,
        P + "ChatMessageDeletedInThread": 1, P + "ChatMessageDeleted": 2,
        P + "ChatThreadPropertiesUpdated": 1, P + "ChatThreadPropertiesUpdatedPerUser": 2,
        # Bob, Carol and Dave himself (he is a member from that position on).
        P + "ChatThreadParticipantAdded": 1, P + "ChatParticipantAddedToThreadWithUser": 3,
        # Bob, Carol and Dave (a member up to that position).
        P + "ChatThreadParticipantRemoved": 1, P + "ChatParticipantRemovedFromThreadWithUser": 3,
        P + "ChatThreadDeleted": 1, P + "ChatThreadWithUserDeleted": 2,
    })


def _check_data(kind: str, subject: str, data: dict[str, Any], ids: dict[str, Any]) -> None:
    thread, alice = ids["thread"], ids["alice"]
    assert data["threadId"] == thread
    assert isinstance(data["transactionId"], str) and data["transactionId"]
    user_level = not (kind.endswith("InThread") or kind in {
        "ChatThreadCreated", "ChatThreadDeleted", "ChatThreadPropertiesUpdated",
        "ChatThreadParticipantAdded", "ChatThreadParticipantRemoved"})
    if user_level:
        recipient = data["recipientCommunicationIdentifier"]["rawId"]
        assert recipient != alice and subject.endswith(f"/recipient/{recipient}")
        assert data["recipientCommunicationIdentifier"]["communicationUser"]["id"] == recipient
    else:
        assert "recipientCommunicationIdentifier" not in data
    if kind.startswith("ChatMessage"):
        assert subject.startswith(f"thread/{thread}/sender/{alice}")
        assert data["messageId"] == ids["message"]
        assert data["senderCommunicationIdentifier"]["rawId"] == alice
        assert data["senderDisplayName"] == "Alice"
        assert data["type"] == "Text" and isinstance(data["version"], int)
        assert data["composeTime"].endswith("Z")
        if "Deleted" in kind:
            assert "messageBody" not in data and data["deleteTime"].endswith("Z")
        else:
            assert data["metadata"] == {"k": "v"}
            assert data["messageBody"] == ("hello, edited" if "Edited" in kind else "hello")
        if "Edited" in kind:
            assert data["editTime"].endswith("Z")
    elif kind.startswith("ChatThreadCreated"):
        assert subject.startswith(f"thread/{thread}/createdBy/{alice}")
        assert data["createdByCommunicationIdentifier"]["rawId"] == alice
        assert data["properties"] == {"topic": "webhooks"}
        names = sorted(p["displayName"] for p in data["participants"])
        assert names == ["Alice", "Bob", "Carol"]
        assert isinstance(data["version"], int) and data["createTime"].endswith("Z")
    elif kind.startswith("ChatThreadPropertiesUpdated"):
        assert subject.startswith(f"thread/{thread}/editedBy/{alice}")
        assert data["properties"] == {"topic": "renamed"} and data["editTime"].endswith("Z")
        assert data["editedByCommunicationIdentifier"]["rawId"] == alice
    elif "Deleted" in kind:
        assert subject.startswith(f"thread/{thread}/deletedBy/{alice}")
        assert data["deletedByCommunicationIdentifier"]["rawId"] == alice and data["deleteTime"].endswith("Z")
    if kind in ("ChatThreadParticipantAdded", "ChatThreadParticipantRemoved"):
        assert "createTime" not in data and isinstance(data["version"], int)  # AcsChatParticipant*ThreadEventData
    elif "Participant" in kind:
        assert data["createTime"].endswith("Z")
    if kind.startswith("ChatMessage") or kind.startswith("ChatThreadCreated") or \
            kind.startswith("ChatThreadPropertiesUpdated") or "Deleted" in kind:
        return
    if "Added" in kind:
        assert subject.startswith(f"thread/{thread}/participantAdded/{ids['dave']}")
        assert data["participantAdded"]["participantCommunicationIdentifier"]["rawId"] == ids["dave"]
        assert data["participantAdded"]["displayName"] == "Dave"
        assert data["addedByCommunicationIdentifier"]["rawId"] == alice and data["time"].endswith("Z")
    elif "Removed" in kind:
        assert subject.startswith(f"thread/{thread}/participantRemoved/{ids['dave']}")
        assert data["participantRemoved"]["participantCommunicationIdentifier"]["rawId"] == ids["dave"]
        assert data["removedByCommunicationIdentifier"]["rawId"] == alice
    else:  # pragma: no cover - every type is listed above
        raise AssertionError(kind)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_chat_event_in_both_schemas_parses_with_azure_eventgrid(engine: str, tmp_path: Path) -> None:
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        eg = subscribe(server, rec.url + "/eg")
        ce = subscribe(server, rec.url + "/ce", schema="cloudevents")
        wait_active(server, eg["id"])
        wait_active(server, ce["id"])
        ids = _life(server)
        expected = _expected(ids)
        total = sum(expected.values())
        rec.wait(lambda: len(rec.events("/eg")) >= total and len(rec.events("/ce")) >= total)

        topic = f"/subscriptions/{server.resource_id}/resourceGroups/threadline/providers/" \
                "Microsoft.Communication/communicationServices/threadline"
        eg_events = rec.events("/eg")
        seen: Counter[str] = Counter()
        for raw in eg_events:
            event = EventGridEvent.from_dict(raw)
            assert event.event_type in SYSTEM_TYPES
            assert event.topic == topic and event.data_version == "1.0" and raw["metadataVersion"] == "1"
            assert raw["eventTime"].endswith("Z")
            seen[event.event_type] += 1
            _check_data(event.event_type.removeprefix(P), event.subject, event.data, ids)
        assert seen == expected

        ce_events = rec.events("/ce")
        seen_ce: Counter[str] = Counter()
        for raw in ce_events:
            cloud = CloudEvent.from_dict(raw)
            assert cloud.type in SYSTEM_TYPES and cloud.source == topic and cloud.specversion == "1.0"
            assert cloud.time is not None and cloud.subject
            seen_ce[cloud.type] += 1
            assert isinstance(cloud.data, dict)
            _check_data(cloud.type.removeprefix(P), cloud.subject, cloud.data, ids)
        assert seen_ce == expected
        # One change, one id: both subscriptions see the same ids, all distinct.
        assert sorted(e["id"] for e in eg_events) == sorted(e["id"] for e in ce_events)
        assert len({e["id"] for e in eg_events}) == total

        deliveries = rec.deliveries("/eg")
        assert all(r.headers["content-type"].startswith("application/json") for r in deliveries)
        assert all(len(r.json) == 1 for r in deliveries)  # batch size 1 by default
        first = deliveries[0].headers
        assert first["aeg-event-type"] == "Notification" and first["aeg-delivery-count"] == "0"
        assert first["aeg-subscription-name"] == eg["id"].upper()
        assert first["aeg-output-event-id"] == deliveries[0].json[0]["id"]
        # CloudEvents without batching: one event object per POST, as Event Grid sends them.
        assert all(r.headers["content-type"].startswith("application/cloudevents+json")
                   and isinstance(r.json, dict) for r in rec.deliveries("/ce"))


@pytest.mark.parametrize("engine", ENGINES)
def test_typing_is_delivered_as_chat_typing_indicator_received_in_thread(engine: str, tmp_path: Path) -> None:
    """Typing is never logged: the node that sees it sends it once, best effort, in both schemas."""
    with running_receiver() as rec, webhook_server(engine, tmp_path / "data") as server:
        kind = P + "ChatTypingIndicatorReceivedInThread"
        eg = subscribe(server, rec.url + "/eg", events=[kind])
        ce = subscribe(server, rec.url + "/ce", schema="cloudevents", events=[kind])
        wait_active(server, eg["id"])
        wait_active(server, ce["id"])
        alice, _, _, thread = pair_thread(server, "typing", ("Alice", "Bob"))
        thread_id = thread.thread_id
        for _ in range(50):  # the node learns of new active subscriptions within a second: type until seen
            thread.send_typing_notification(sender_display_name="Alice")
            try:
                rec.wait(lambda: rec.events("/eg") and rec.events("/ce"), timeout=0.5)
                break
            except AssertionError:
                continue
        event = EventGridEvent.from_dict(rec.events("/eg")[0])
        assert event.event_type == SystemEventNames.AcsChatTypingIndicatorReceivedInThreadEventName.value
        assert event.subject == f"thread/{thread_id}/sender/{alice.id}"
        assert event.data["senderCommunicationIdentifier"]["rawId"] == alice.id
        assert event.data["senderDisplayName"] == "Alice" and event.data["messageBody"] == ""
        assert event.data["threadId"] == thread_id and "recipientCommunicationIdentifier" not in event.data
        cloud = CloudEvent.from_dict(rec.events("/ce")[0])
        assert cloud.type == event.event_type and cloud.subject == event.subject
