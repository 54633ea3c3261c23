"""Every chat operation through both twins against a real Threadline server (https and plain http)."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from azure.communication.chat import ChatParticipant as OfficialParticipant
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from threadline.chat import (
    ChatClient,
    ChatMessageType,
    ChatParticipant,
    ChatThreadClient,
    CommunicationTokenCredential,
    CommunicationUserIdentifier,
)
from threadline.chat.aio import ChatClient as AsyncChatClient
from threadline.chat.aio import CommunicationTokenCredential as AsyncCredential
from threadline.identity import CommunicationIdentityClient
from threadline.identity.tokens import TokenIssuer, derive_signing_key

from ..conftest import RunningServer
from ..support import User, new_user, official_aio_chat, official_chat

T = TypeVar("T")
MODES = ["https", "http"]


def run(factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(factory())  # type: ignore[arg-type]


def endpoint(server: RunningServer, mode: str) -> tuple[str, dict[str, Any]]:
    if mode == "https":
        return server.https_endpoint, {"connection_verify": server.cert_path}
    return server.http_endpoint, {}


def ours(server: RunningServer, user: User, mode: str, **kwargs: Any) -> ChatClient:
    url, options = endpoint(server, mode)
    return ChatClient(url, CommunicationTokenCredential(user.token), **options, **kwargs)


def ours_aio(server: RunningServer, user: User, mode: str, **kwargs: Any) -> AsyncChatClient:
    url, options = endpoint(server, mode)
    return AsyncChatClient(url, AsyncCredential(user.token), **options, **kwargs)


def ids(identifiers: Any) -> set[str]:
    return {i.identifier.raw_id for i in identifiers}


# -- every operation, sync ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_operation_sync(server: RunningServer, mode: str) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)
    token = str(uuid.uuid4())
    with ours(server, alice, mode) as client:
        created = client.create_chat_thread(
            "planning",
            thread_participants=[ChatParticipant(identifier=bob.identifier, display_name="Bob",
                                                 share_history_time=datetime.now(UTC) - timedelta(days=1))],
            idempotency_token=token,
        )
        thread = created.chat_thread
        assert created.errors == []
        assert thread.topic == "planning"
        assert thread.created_by == alice.identifier
        assert abs((thread.created_on - datetime.now(UTC)).total_seconds()) < 60
        again = client.create_chat_thread("planning", idempotency_token=token)
        assert again.chat_thread.id == thread.id

        with client.get_chat_thread_client(thread.id) as chat:
            assert isinstance(chat, ChatThreadClient) and chat.thread_id == thread.id
            assert chat.get_properties().topic == "planning"
            chat.update_topic("retro")
            chat.update_topic()
            props = chat.get_properties()
            assert (props.id, props.topic, props.created_by) == (thread.id, "retro", alice.identifier)

            first = chat.send_message("hello", sender_display_name="Alice", metadata={"tag": "a"})
            second = chat.send_message("<b>bold</b>", chat_message_type="html")
            message = chat.get_message(first.id)
            assert (message.id, message.type, message.sender_display_name) == (first.id, ChatMessageType.TEXT, "Alice")
            assert message.content is not None and message.content.message == "hello"
            assert message.metadata == {"tag": "a"}
            assert message.sender == alice.identifier
            assert chat.get_message(second.id).type == ChatMessageType.HTML

            chat.update_message(first.id, "hello, edited", metadata={"tag": "b"})
            edited = chat.get_message(first.id)
            assert edited.content is not None and edited.content.message == "hello, edited"
            assert edited.metadata == {"tag": "b"} and edited.edited_on is not None

            pages = [list(page) for page in chat.list_messages(results_per_page=1).by_page()]
            assert len(pages) > 3 and all(len(p) <= 1 for p in pages)
            listed = [m for page in pages for m in page]
            assert [m.id for m in listed[:2]] == [second.id, first.id]  # newest first
            kinds = {m.type for m in listed}
            assert {ChatMessageType.TEXT, ChatMessageType.HTML, ChatMessageType.TOPIC_UPDATED,
                    ChatMessageType.PARTICIPANT_ADDED} <= kinds
            since = list(chat.list_messages(start_time=datetime.now(UTC) + timedelta(hours=1)))
            assert since == []

            chat.send_read_receipt(second.id)
            receipts = list(chat.list_read_receipts())
            assert [(r.sender, r.chat_message_id) for r in receipts] == [(alice.identifier, second.id)]
            assert list(chat.list_read_receipts(skip=1)) == []
            chat.send_typing_notification()
            chat.send_typing_notification(sender_display_name="Alice")

            assert chat.add_participants([]) == []
            assert chat.add_participants([ChatParticipant(identifier=carol.identifier, display_name="Carol")]) == []
            participants = list(chat.list_participants())
            assert ids(participants) == {alice.id, bob.id, carol.id}
            assert {p.display_name for p in participants} >= {"Bob", "Carol"}
            paged = [list(p) for p in chat.list_participants(results_per_page=1, skip=1).by_page()]
            assert [len(p) for p in paged] == [1, 1]
            chat.remove_participant(carol.identifier)
            assert ids(chat.list_participants()) == {alice.id, bob.id}

            chat.delete_message(second.id)
            with pytest.raises(ResourceNotFoundError):
                chat.get_message(second.id)

        listed_threads = [t.id for t in client.list_chat_threads(results_per_page=1)]
        assert thread.id in listed_threads
        client.delete_chat_thread(thread.id)
        with pytest.raises(ResourceNotFoundError):
            client.get_chat_thread_client(thread.id).get_properties()


# -- every operation, aio -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_operation_aio(server: RunningServer, mode: str) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)

    async def scenario() -> None:
        token = str(uuid.uuid4())
        async with ours_aio(server, alice, mode) as client:
            created = await client.create_chat_thread(
                "planning", thread_participants=[ChatParticipant(identifier=bob.identifier)], idempotency_token=token
            )
            thread = created.chat_thread
            assert created.errors == [] and thread.created_by == alice.identifier
            assert (await client.create_chat_thread("x", idempotency_token=token)).chat_thread.id == thread.id

            async with client.get_chat_thread_client(thread.id) as chat:
                assert chat.thread_id == thread.id
                await chat.update_topic("retro")
                assert (await chat.get_properties()).topic == "retro"
                first = await chat.send_message("hello", sender_display_name="Alice", metadata={"k": "v"})
                second = await chat.send_message("two", chat_message_type=ChatMessageType.TEXT)
                got = await chat.get_message(first.id)
                assert got.content is not None and got.content.message == "hello" and got.metadata == {"k": "v"}
                await chat.update_message(first.id, content="edited")
                assert (await chat.get_message(first.id)).content.message == "edited"  # type: ignore[union-attr]

                pages = []
                async for page in chat.list_messages(results_per_page=2).by_page():
                    pages.append([m async for m in page])
                assert all(len(p) <= 2 for p in pages) and len(pages) >= 2
                assert [m.id for m in pages[0]] == [second.id, first.id]

                await chat.send_read_receipt(first.id)
                receipts = [r async for r in chat.list_read_receipts()]
                assert [(r.sender, r.chat_message_id) for r in receipts] == [(alice.identifier, first.id)]
                await chat.send_typing_notification(sender_display_name="Alice")

                assert await chat.add_participants([ChatParticipant(identifier=carol.identifier)]) == []
                assert {p.identifier.raw_id async for p in chat.list_participants()} == {alice.id, bob.id, carol.id}
                await chat.remove_participant(carol.identifier)
                assert {p.identifier.raw_id async for p in chat.list_participants(skip=1)} == {bob.id}

                await chat.delete_message(second.id)
                with pytest.raises(ResourceNotFoundError):
                    await chat.get_message(second.id)

            assert thread.id in [t.id async for t in client.list_chat_threads(results_per_page=1)]
            await client.delete_chat_thread(thread.id)
            async with client.get_chat_thread_client(thread.id) as gone:
                with pytest.raises(ResourceNotFoundError):
                    await gone.get_properties()

    run(scenario)


# -- interoperability with the official SDK ----------------------------------------------------


def test_threads_created_by_the_official_sdk_work_with_ours_and_back(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    official = official_chat(server, alice)
    verify = {"connection_verify": server.cert_path}  # the official thread clients do not inherit it
    theirs = official.create_chat_thread("official", thread_participants=[
        OfficialParticipant(identifier=bob.identifier, display_name="Bob")
    ]).chat_thread
    official.get_chat_thread_client(theirs.id, **verify).send_message("from official")

    mine = ours(server, bob, "https")
    chat = mine.get_chat_thread_client(theirs.id)
    assert chat.get_properties().topic == "official"
    texts = [m.content.message for m in chat.list_messages() if m.type == ChatMessageType.TEXT]  # type: ignore[union-attr]
    assert texts == ["from official"]
    sent = chat.send_message("from threadline")

    # and the reverse: ours creates, the official reads and answers
    created = mine.create_chat_thread("threadline",
                                      thread_participants=[ChatParticipant(identifier=alice.identifier)])
    official_thread = official.get_chat_thread_client(created.chat_thread.id, **verify)
    assert official_thread.get_properties().topic == "threadline"
    assert official_thread.get_message(official_thread.send_message("hi").id).content.message == "hi"
    echoed = official.get_chat_thread_client(theirs.id, **verify).get_message(sent.id)
    assert echoed.content.message == "from threadline"
    participant_ids = {p.identifier.raw_id for p in official_thread.list_participants()}
    assert participant_ids == {alice.id, bob.id}


def test_aio_interoperability(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def scenario() -> None:
        async with official_aio_chat(server, alice) as official:
            created = await official.create_chat_thread("aio official")
            async with official.get_chat_thread_client(created.chat_thread.id,
                                                       connection_verify=server.cert_path) as thread:
                await thread.add_participants([OfficialParticipant(identifier=bob.identifier)])
                async with ours_aio(server, bob, "http") as mine, \
                        mine.get_chat_thread_client(created.chat_thread.id) as chat:
                    sent = await chat.send_message("ours")
                    assert (await thread.get_message(sent.id)).content.message == "ours"

    run(scenario)


# -- settings shared with thread clients --------------------------------------------------------


def test_thread_clients_inherit_the_chat_clients_settings(server: RunningServer) -> None:
    alice = new_user(server)
    client = ours(server, alice, "https", api_version="2023-11-07", headers={"x-test": "1"})
    thread = client.create_chat_thread("settings").chat_thread
    chat = client.get_chat_thread_client(thread.id)
    # connection_verify was inherited, or this https call would fail certificate verification
    assert chat.get_properties().id == thread.id
    assert chat._requests.api_version == "2023-11-07"
    overridden = client.get_chat_thread_client(thread.id, api_version="2024-03-07")
    assert overridden._requests.api_version == "2024-03-07"


def test_plain_http_to_a_remote_host_is_refused_before_any_request() -> None:
    token, _ = TokenIssuer(b"k" * 32, "r").issue("8:acs:r_u", ["chat"], 60, 0)
    with pytest.raises(ValueError, match="loopback"):
        ChatClient("http://chat.example.com", CommunicationTokenCredential(token))
    with pytest.raises(ValueError, match="loopback"):
        AsyncChatClient("http://10.1.2.3:8080", AsyncCredential(token))


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_error_mapping(server: RunningServer, mode: str) -> None:
    alice, outsider = new_user(server), new_user(server)
    with ours(server, alice, mode) as client:
        thread = client.create_chat_thread("errors").chat_thread
        with client.get_chat_thread_client("19:" + "0" * 32 + "@thread.v2") as unknown, \
                pytest.raises(ResourceNotFoundError) as missing:
            unknown.get_properties()
    assert missing.value.status_code == 404

    forged, _ = TokenIssuer(derive_signing_key(b"wrong key"), server.resource_id).issue(alice.id, ["chat"], 60, 0)
    url, options = endpoint(server, mode)
    with ChatClient(url, CommunicationTokenCredential(forged), **options) as bad, \
            pytest.raises(ClientAuthenticationError) as unauthorized:
        bad.create_chat_thread("x")
    assert unauthorized.value.status_code == 401
    assert unauthorized.value.model.error.code == "Unauthorized"  # type: ignore[union-attr]

    with ours(server, outsider, mode) as other, other.get_chat_thread_client(thread.id) as foreign, \
            pytest.raises(HttpResponseError) as forbidden:
        foreign.send_message("let me in")
    assert type(forbidden.value) is HttpResponseError
    assert forbidden.value.status_code == 403
    assert forbidden.value.model.error.code == "Forbidden"  # type: ignore[union-attr]
    assert forbidden.value.error is not None and forbidden.value.error.code == "Forbidden"
    assert str(forbidden.value).startswith("(Forbidden)")

    async def aio_errors() -> None:
        async with AsyncChatClient(url, AsyncCredential(forged), **options) as bad:
            with pytest.raises(ClientAuthenticationError):
                await bad.delete_chat_thread(thread.id)
        async with ours_aio(server, outsider, mode) as other:
            async with other.get_chat_thread_client(thread.id) as foreign:
                with pytest.raises(HttpResponseError) as exc:
                    await foreign.get_properties()
            assert exc.value.status_code == 403
            async with other.get_chat_thread_client("19:" + "1" * 32 + "@thread.v2") as unknown:
                with pytest.raises(ResourceNotFoundError):
                    await unknown.get_properties()

    run(aio_errors)


def test_revoked_tokens_are_refused(server: RunningServer) -> None:
    identity = CommunicationIdentityClient.from_connection_string(server.connection_string,
                                                                  connection_verify=server.cert_path)
    user, token = identity.create_user_and_token(["chat"])
    client = ChatClient(server.http_endpoint, CommunicationTokenCredential(token.token))
    client.create_chat_thread("before")
    identity.revoke_tokens(user)
    with pytest.raises(ClientAuthenticationError):
        ChatClient(server.http_endpoint, CommunicationTokenCredential(token.token)).create_chat_thread("after")


# -- token refresh ------------------------------------------------------------------------------


def _short_token(server: RunningServer, user_id: str, seconds: int) -> str:
    """A token the server accepts, expiring in ``seconds`` (signed with the server's own key)."""
    issuer = TokenIssuer(derive_signing_key(base64.b64decode(server.access_key)), server.resource_id)
    token, _ = issuer.issue(user_id, ["chat"], 1, 0, now=time.time() + seconds - 60)
    return token


def test_the_refresher_is_used_before_the_token_expires(server: RunningServer) -> None:
    identity = CommunicationIdentityClient(server.http_endpoint, server.access_key)
    user = identity.create_user()
    calls: list[AccessToken] = []

    def refresher() -> AccessToken:
        fresh = identity.get_token(user, ["chat"])
        calls.append(fresh)
        # the identity API gives expires_on as a string; the credential wants epoch seconds
        return AccessToken(fresh.token, int(datetime.fromisoformat(str(fresh.expires_on)[:19]).replace(
            tzinfo=UTC).timestamp()))

    expired = _short_token(server, user.properties["id"], -30)
    with pytest.raises(ClientAuthenticationError):
        ChatClient(server.http_endpoint, CommunicationTokenCredential(expired)).create_chat_thread("no")

    credential = CommunicationTokenCredential(_short_token(server, user.properties["id"], 60),
                                              token_refresher=refresher)
    client = ChatClient(server.http_endpoint, credential)
    thread = client.create_chat_thread("refreshed").chat_thread
    assert len(calls) == 1
    client.get_chat_thread_client(thread.id).send_message("still fine")
    assert len(calls) == 1
    assert credential.get_token().token == calls[0].token

    async def aio() -> None:
        async def arefresh() -> AccessToken:
            return refresher()

        cred = AsyncCredential(expired, token_refresher=arefresh)
        async with AsyncChatClient(server.http_endpoint, cred) as aclient:
            assert (await aclient.create_chat_thread("aio refreshed")).chat_thread.topic == "aio refreshed"

    run(aio)
    assert len(calls) == 2
    assert isinstance(user, CommunicationUserIdentifier)
