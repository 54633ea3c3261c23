"""Every chat operation through the official sync SDK, over HTTPS, against a real server."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from azure.communication.chat import ChatMessageType, ChatParticipant
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from ..conftest import RunningServer
from ..support import identity_client, new_user, official_chat


def test_thread_lifecycle_and_messages(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    chat = official_chat(server, alice)
    created = chat.create_chat_thread(
        "Lunch", thread_participants=[ChatParticipant(identifier=bob.identifier, display_name="Bob")]
    )
    assert created.errors == []
    thread = created.chat_thread
    assert thread.topic == "Lunch"
    assert thread.id.startswith("19:") and thread.id.endswith("@thread.v2")
    assert thread.created_by.properties["id"] == alice.id
    client = chat.get_chat_thread_client(thread.id, connection_verify=server.cert_path)

    props = client.get_properties()
    assert (props.id, props.topic) == (thread.id, "Lunch")
    assert props.created_on.tzinfo is not None

    sent = client.send_message("hello", sender_display_name="Alice", metadata={"tag": "first"})
    message = client.get_message(sent.id)
    assert message.content.message == "hello"
    assert message.type == ChatMessageType.TEXT
    assert message.sequence_id == "3"  # after participantAdded and topicUpdated
    assert message.version == sent.id
    assert message.sender_display_name == "Alice"
    assert message.sender.properties["id"] == alice.id
    assert message.metadata == {"tag": "first"}

    html = client.send_message("<b>bold</b>", chat_message_type=ChatMessageType.HTML)
    assert client.get_message(html.id).type == ChatMessageType.HTML
    assert client.get_message(html.id).content.message == "<b>bold</b>"

    client.update_message(sent.id, content="hello again", metadata={"tag": "second", "extra": "x"})
    edited = client.get_message(sent.id)
    assert edited.content.message == "hello again"
    assert edited.metadata == {"tag": "second", "extra": "x"}
    assert edited.edited_on is not None
    assert int(edited.version) > int(message.version)

    listed = list(client.list_messages())
    assert [m.sequence_id for m in listed] == ["4", "3", "2", "1"]
    assert listed[2].type == ChatMessageType.TOPIC_UPDATED and listed[2].content.topic == "Lunch"
    added = listed[3]
    assert added.type == ChatMessageType.PARTICIPANT_ADDED
    assert {p.identifier.properties["id"] for p in added.content.participants} == {alice.id, bob.id}
    assert added.content.initiator.properties["id"] == alice.id
    assert added.sender is None and added.sender_display_name is None

    client.delete_message(html.id)
    with pytest.raises(ResourceNotFoundError):
        client.get_message(html.id)
    tombstone = next(m for m in client.list_messages() if m.id == html.id)
    assert tombstone.deleted_on is not None and tombstone.content is None

    client.update_topic("Dinner")
    assert client.get_properties().topic == "Dinner"
    newest = next(iter(client.list_messages()))
    assert newest.type == ChatMessageType.TOPIC_UPDATED and newest.content.topic == "Dinner"

    chat.delete_chat_thread(thread.id)
    with pytest.raises(ResourceNotFoundError):
        client.get_properties()
    with pytest.raises(ResourceNotFoundError):
        client.send_message("after delete")


def test_participants_receipts_and_typing(server: RunningServer) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)
    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread("Team").chat_thread.id
    client = chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)

    failed = client.add_participants([
        ChatParticipant(identifier=bob.identifier, display_name="Bob"),
        ChatParticipant(identifier=carol.identifier, display_name="Carol",
                        share_history_time=dt.datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)),
    ])
    assert failed == []
    people = list(client.list_participants())
    assert [p.identifier.properties["id"] for p in people] == [alice.id, bob.id, carol.id]
    assert [p.display_name for p in people] == [None, "Bob", "Carol"]
    assert people[2].share_history_time == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert people[0].share_history_time == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    page = list(client.list_participants(results_per_page=1, skip=1))
    assert [p.identifier.properties["id"] for p in page] == [bob.id, carol.id]
    first_page = next(iter(client.list_participants(results_per_page=2).by_page()))
    assert len(list(first_page)) == 2

    # A participant that is not a user of this resource fails alone, with its raw id as target.
    from azure.communication.chat import CommunicationUserIdentifier

    ghost = CommunicationUserIdentifier(f"8:acs:{server.resource_id}_00000000-0000-0000-0000-000000000000")
    stranger = CommunicationUserIdentifier("8:acs:other-resource_1234")
    failures = client.add_participants([ChatParticipant(identifier=ghost), ChatParticipant(identifier=stranger)])
    assert {(p.identifier.properties["id"], e.code) for p, e in failures} == {
        (ghost.properties["id"], "404"), (stranger.properties["id"], "403"),
    }

    first = client.send_message("one").id
    second = client.send_message("two").id
    bob_client = official_chat(server, bob).get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    bob_client.send_read_receipt(first)
    bob_client.send_read_receipt(second)
    client.send_read_receipt(second)
    receipts = list(client.list_read_receipts())
    assert sorted((r.sender.properties["id"], r.chat_message_id) for r in receipts) == sorted(
        [(bob.id, second), (alice.id, second)]
    )
    assert len(list(client.list_read_receipts(results_per_page=1, skip=1))) == 1

    client.send_typing_notification(sender_display_name="Alice")
    client.send_typing_notification()

    bob_client.remove_participant(bob.identifier)  # leaving is allowed
    assert [p.identifier.properties["id"] for p in client.list_participants()] == [alice.id, carol.id]
    removed = next(iter(client.list_messages()))
    assert removed.type == ChatMessageType.PARTICIPANT_REMOVED
    assert removed.content.participants[0].identifier.properties["id"] == bob.id
    with pytest.raises(HttpResponseError) as denied:
        bob_client.send_message("I left")
    assert denied.value.status_code == 403
    assert denied.value.error.code == "Forbidden"


def test_share_history_time_hides_older_messages(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread("History").chat_thread.id
    client = chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    old = client.send_message("before bob").id
    time.sleep(1.1)  # share times are kept to the second, as ACS does
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(1.1)
    client.add_participants([ChatParticipant(identifier=bob.identifier, share_history_time=cutoff)])
    new = client.send_message("after bob").id
    bob_client = official_chat(server, bob).get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    seen = [m.id for m in bob_client.list_messages()]
    assert new in seen and old not in seen
    assert all(m.created_on >= cutoff.replace(microsecond=0) for m in bob_client.list_messages())
    with pytest.raises(ResourceNotFoundError):
        bob_client.get_message(old)
    assert bob_client.get_message(new).content.message == "after bob"
    assert old in [m.id for m in client.list_messages()]


def test_idempotent_create_and_threads_listing(server: RunningServer) -> None:
    alice = new_user(server)
    chat = official_chat(server, alice)
    first = chat.create_chat_thread("Once", idempotency_token="token-1").chat_thread
    again = chat.create_chat_thread("Once (retry)", idempotency_token="token-1").chat_thread
    assert (again.id, again.topic, again.created_on) == (first.id, "Once", first.created_on)
    ids = [chat.create_chat_thread(f"T{i}").chat_thread.id for i in range(4)]
    listed = [t.id for t in chat.list_chat_threads(results_per_page=2)]
    assert sorted(listed) == sorted([first.id, *ids])
    pages = [list(page) for page in chat.list_chat_threads(results_per_page=2).by_page()]
    assert [len(p) for p in pages] == [2, 2, 1]
    chat.delete_chat_thread(ids[0])
    deleted = [t for t in chat.list_chat_threads() if t.id == ids[0]]
    assert deleted and deleted[0].deleted_on is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    assert list(chat.list_chat_threads(start_time=later)) == []


def test_messages_paging_with_start_time(server: RunningServer) -> None:
    alice = new_user(server)
    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread("Paging").chat_thread.id
    client = chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    sent = [client.send_message(f"m{i}").id for i in range(11)]
    pages = [list(p) for p in client.list_messages(results_per_page=5).by_page()]
    assert [len(p) for p in pages] == [5, 5, 3]
    flat = [m.id for p in pages for m in p]
    assert flat[:11] == list(reversed(sent))
    assert len(set(flat)) == len(flat)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert list(client.list_messages(start_time=future)) == []


def test_errors_are_acs_shaped(server: RunningServer) -> None:
    alice, mallory = new_user(server), new_user(server)
    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread("Private").chat_thread.id
    client = chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    mine = client.send_message("mine").id

    outsider = official_chat(server, mallory).get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    with pytest.raises(HttpResponseError) as forbidden:
        outsider.get_properties()
    assert forbidden.value.status_code == 403 and forbidden.value.error.code == "Forbidden"

    member_client = official_chat(server, mallory)
    client.add_participants([ChatParticipant(identifier=mallory.identifier)])
    other = member_client.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    for call in (lambda: other.update_message(mine, content="hacked"), lambda: other.delete_message(mine)):
        with pytest.raises(HttpResponseError) as not_sender:
            call()
        assert not_sender.value.status_code == 403
    assert client.get_message(mine).content.message == "mine"

    missing = chat.get_chat_thread_client("19:0000@thread.v2", connection_verify=server.cert_path)
    with pytest.raises(ResourceNotFoundError):
        missing.get_properties()
    with pytest.raises(ResourceNotFoundError):
        client.get_message("12345")

    identity_client(server).revoke_tokens(alice.identifier)
    with pytest.raises(ClientAuthenticationError) as revoked:
        client.get_properties()
    assert revoked.value.status_code == 401 and revoked.value.error.code == "Unauthorized"
