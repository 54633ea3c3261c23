"""The Identity API through the official identity SDK (sync and aio), HMAC-signed."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json

import pytest
from azure.communication.chat import ChatParticipant
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.communication.identity.aio import CommunicationIdentityClient as AsyncIdentityClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from ..conftest import RunningServer
from ..support import User, identity_client, official_chat


def payload(token: str) -> dict[str, object]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def test_create_user_and_tokens(server: RunningServer) -> None:
    client = identity_client(server)
    user = client.create_user()
    assert user.properties["id"].startswith(f"8:acs:{server.resource_id}_")
    user2, token = client.create_user_and_token([CommunicationTokenScope.CHAT],
                                                token_expires_in=dt.timedelta(minutes=60))
    claims = payload(token.token)
    assert claims["skypeid"] == user2.properties["id"][2:]
    assert claims["acsScope"] == "chat" and claims["resourceId"] == server.resource_id
    assert int(claims["exp"]) - int(claims["iat"]) == 3600
    expires = dt.datetime.fromisoformat(token.expires_on)
    assert abs((expires - dt.datetime.now(dt.UTC)).total_seconds() - 3600) < 60
    issued = client.get_token(user, [CommunicationTokenScope.CHAT, CommunicationTokenScope.VOIP])
    assert payload(issued.token)["acsScope"] == "chat,voip"
    default = payload(client.get_token(user, ["chat"]).token)
    assert int(default["exp"]) - int(default["iat"]) == 24 * 3600


@pytest.mark.parametrize("minutes", [59, 1441])
def test_token_lifetime_bounds(server: RunningServer, minutes: int) -> None:
    client = identity_client(server)
    user = client.create_user()
    with pytest.raises(HttpResponseError) as failed:
        client.get_token(user, ["chat"], token_expires_in=dt.timedelta(minutes=minutes))
    assert failed.value.status_code == 400
    assert failed.value.error.code == "ValidationError"
    assert failed.value.error.target == "ExpiresInMinutes"
    assert failed.value.error.message == (
        f"ExpiresInMinutes value {minutes} is invalid. Value must be within the [60, 1440] interval."
    )


def test_revoke_and_delete(server: RunningServer) -> None:
    client = identity_client(server)
    alice, alice_token = client.create_user_and_token(["chat"])
    bob, bob_token = client.create_user_and_token(["chat"])
    chat = official_chat(server, User(alice, alice_token.token))
    thread_id = chat.create_chat_thread("x", thread_participants=[ChatParticipant(identifier=bob)]).chat_thread.id
    client.revoke_tokens(alice)
    with pytest.raises(ClientAuthenticationError):
        chat.create_chat_thread("refused")
    fresh = client.get_token(alice, ["chat"])
    assert official_chat(server, User(alice, fresh.token)).create_chat_thread("ok").chat_thread.topic == "ok"

    client.delete_user(bob)
    bob_chat = official_chat(server, User(bob, bob_token.token))
    with pytest.raises(ClientAuthenticationError):
        bob_chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path).get_properties()
    alice_chat = official_chat(server, User(alice, fresh.token))
    thread = alice_chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
    assert [p.identifier.properties["id"] for p in thread.list_participants()] == [alice.properties["id"]]
    with pytest.raises(HttpResponseError) as gone:
        client.get_token(bob, ["chat"])
    assert gone.value.status_code == 404


def test_wrong_key_and_plain_http(server: RunningServer) -> None:
    wrong = CommunicationIdentityClient(
        server.https_endpoint, AzureKeyCredential(base64.b64encode(b"k" * 32).decode()),
        connection_verify=server.cert_path,
    )
    with pytest.raises(ClientAuthenticationError) as denied:
        wrong.create_user()
    assert denied.value.error.code == "Unauthorized"
    plain = CommunicationIdentityClient(server.http_endpoint, AzureKeyCredential(server.access_key))
    assert plain.create_user().properties["id"].startswith("8:acs:")


def test_aio_identity(server: RunningServer) -> None:
    async def flow() -> None:
        async with AsyncIdentityClient.from_connection_string(
            server.connection_string, connection_verify=server.cert_path
        ) as client:
            user, token = await client.create_user_and_token(["chat"])
            assert payload(token.token)["skypeid"] == user.properties["id"][2:]
            again = await client.get_token(user, ["chat.join"])
            assert payload(again.token)["acsScope"] == "chat.join"
            await client.revoke_tokens(user)
            await client.delete_user(user)

    asyncio.run(flow())
