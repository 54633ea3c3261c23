"""threadline.identity against a real server: both twins, http and https, HMAC and errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.communication.identity import CommunicationIdentityClient as OfficialIdentityClient
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from threadline.chat import ChatClient, CommunicationTokenCredential
from threadline.identity import CommunicationIdentityClient, CommunicationTokenScope, CommunicationUserIdentifier
from threadline.identity.aio import CommunicationIdentityClient as AsyncIdentityClient

from ..conftest import RunningServer

MODES = ["https", "http"]


def connection_string(server: RunningServer, mode: str) -> tuple[str, dict[str, Any]]:
    if mode == "https":
        return server.connection_string, {"connection_verify": server.cert_path}
    return f"endpoint={server.http_endpoint}/;accesskey={server.access_key}", {}


def expiry(token: AccessToken) -> datetime:
    """``expires_on`` is the service's ISO string, as in azure-communication-identity 1.5.0."""
    assert isinstance(token.expires_on, str)
    return datetime.fromisoformat(token.expires_on[:19]).replace(tzinfo=UTC)


def assert_chat_works(server: RunningServer, token: str) -> None:
    with ChatClient(server.http_endpoint, CommunicationTokenCredential(token)) as chat:
        assert chat.create_chat_thread("identity check").chat_thread.topic == "identity check"


@pytest.mark.parametrize("mode", MODES)
def test_every_operation_sync(server: RunningServer, mode: str) -> None:
    conn, options = connection_string(server, mode)
    with CommunicationIdentityClient.from_connection_string(conn, **options) as client:
        user = client.create_user()
        assert isinstance(user, CommunicationUserIdentifier)
        assert user.raw_id.startswith("8:acs:" + server.resource_id + "_")

        other, token = client.create_user_and_token([CommunicationTokenScope.CHAT], token_expires_in=timedelta(hours=1))
        assert other.raw_id != user.raw_id
        assert abs((expiry(token) - datetime.now(UTC)).total_seconds() - 3600) < 120
        assert_chat_works(server, token.token)

        issued = client.get_token(user, ["chat", "voip"])
        assert abs((expiry(issued) - datetime.now(UTC)).total_seconds() - 24 * 3600) < 120
        assert CommunicationTokenCredential(issued.token).get_token().expires_on == int(expiry(issued).timestamp())
        assert_chat_works(server, issued.token)

        client.revoke_tokens(user)
        with pytest.raises(ClientAuthenticationError):
            assert_chat_works(server, issued.token)
        assert_chat_works(server, client.get_token(user, ["chat"]).token)  # new tokens work again

        client.delete_user(user)
        with pytest.raises(ResourceNotFoundError):
            client.get_token(user, ["chat"])

        with pytest.raises(HttpResponseError) as bounds:
            client.get_token(other, ["chat"], token_expires_in=timedelta(minutes=30))
        assert bounds.value.status_code == 400
        assert bounds.value.model.error.target == "ExpiresInMinutes"  # type: ignore[union-attr]

        with pytest.raises(HttpResponseError) as teams:
            client.get_token_for_teams_user("a.b.c", "app-id", "object-id")
        assert teams.value.status_code == 403
        assert teams.value.model.error.code == "TeamsExchangeUnsupported"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", MODES)
def test_every_operation_aio(server: RunningServer, mode: str) -> None:
    conn, options = connection_string(server, mode)

    async def scenario() -> None:
        async with AsyncIdentityClient.from_connection_string(conn, **options) as client:
            user = await client.create_user()
            other, token = await client.create_user_and_token(["chat"])
            assert abs((expiry(token) - datetime.now(UTC)).total_seconds() - 24 * 3600) < 120
            issued = await client.get_token(user, [CommunicationTokenScope.CHAT], token_expires_in=timedelta(hours=2))
            assert abs((expiry(issued) - datetime.now(UTC)).total_seconds() - 7200) < 120
            await client.revoke_tokens(user)
            await client.delete_user(user)
            await client.delete_user(other)
            with pytest.raises(HttpResponseError) as teams:
                await client.get_token_for_teams_user("a.b.c", "app-id", "object-id")
            assert teams.value.status_code == 403
            assert teams.value.model.error.code == "TeamsExchangeUnsupported"  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_wrong_access_key_is_a_401(server: RunningServer) -> None:
    with CommunicationIdentityClient(server.http_endpoint, AzureKeyCredential("d3Jvbmcga2V5")) as client, \
            pytest.raises(ClientAuthenticationError) as exc:
        client.create_user()
    assert exc.value.status_code == 401


def test_the_endpoint_path_and_host_are_signed(server: RunningServer) -> None:
    """A client built from the endpoint with a trailing slash, or with localhost, still verifies."""
    port = server.http_endpoint.rsplit(":", 1)[1]
    for url in (server.http_endpoint + "/", f"http://localhost:{port}"):
        with CommunicationIdentityClient(url, server.access_key) as client:
            assert client.create_user().raw_id.startswith("8:acs:")


def test_users_made_by_ours_work_with_the_official_client_and_back(server: RunningServer) -> None:
    official = OfficialIdentityClient.from_connection_string(server.connection_string,
                                                             connection_verify=server.cert_path)
    with CommunicationIdentityClient.from_connection_string(server.connection_string,
                                                            connection_verify=server.cert_path) as ours:
        mine = ours.create_user()
        assert official.get_token(mine, ["chat"]).token
        theirs = official.create_user()
        assert ours.get_token(theirs, ["chat"]).token
        ours.delete_user(theirs)
        official.delete_user(mine)


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="Account URL must be a string"):
        CommunicationIdentityClient(None, "a2V5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shared key"):
        CommunicationIdentityClient("https://h", "")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loopback"):
        CommunicationIdentityClient("http://example.com", "a2V5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid connection string"):
        CommunicationIdentityClient.from_connection_string("endpoint=https://h/")


def test_unknown_users_are_refused(server: RunningServer) -> None:
    nobody = CommunicationUserIdentifier(f"8:acs:{server.resource_id}_00000000-0000-0000-0000-000000000000")
    with CommunicationIdentityClient(server.http_endpoint, server.access_key) as client:
        with pytest.raises(ResourceNotFoundError) as exc:
            client.get_token(nobody, ["chat"])
        assert exc.value.status_code == 404
