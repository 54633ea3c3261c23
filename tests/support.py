"""Helpers for tests: users, tokens and official SDK clients bound to a test server."""

from __future__ import annotations

from typing import Any

from azure.communication.chat import ChatClient, ChatParticipant, ChatThreadClient, CommunicationTokenCredential
from azure.communication.chat.aio import ChatClient as AsyncChatClient
from azure.communication.chat.aio import CommunicationTokenCredential as AsyncCommunicationTokenCredential
from azure.communication.identity import CommunicationIdentityClient, CommunicationUserIdentifier

from .conftest import RunningServer

__all__ = ["User", "identity_client", "new_user", "official_aio_chat", "official_chat", "pair_thread"]


class User:
    """A test identity with a chat token."""

    def __init__(self, identifier: CommunicationUserIdentifier, token: str) -> None:
        self.identifier = identifier
        self.token = token

    @property
    def id(self) -> str:
        return str(self.identifier.properties["id"])


def identity_client(server: RunningServer) -> CommunicationIdentityClient:
    """The official identity client over HTTPS, trusting the server's CA."""
    return CommunicationIdentityClient.from_connection_string(
        server.connection_string, connection_verify=server.cert_path
    )


def new_user(server: RunningServer, scopes: list[str] | None = None) -> User:
    """Create an identity with a token through the official identity SDK."""
    identifier, token = identity_client(server).create_user_and_token(scopes or ["chat"])
    return User(identifier, token.token)


def official_chat(server: RunningServer, user: User, **kwargs: Any) -> ChatClient:
    """The official sync ChatClient over HTTPS."""
    return ChatClient(
        server.https_endpoint, CommunicationTokenCredential(user.token), connection_verify=server.cert_path,
        **kwargs,
    )


def official_aio_chat(server: RunningServer, user: User, **kwargs: Any) -> AsyncChatClient:
    """The official aio ChatClient over HTTPS."""
    return AsyncChatClient(
        server.https_endpoint, AsyncCommunicationTokenCredential(user.token),
        connection_verify=server.cert_path, **kwargs,
    )


def pair_thread(
    server: RunningServer, topic: str, names: tuple[str, str]
) -> tuple[User, User, ChatClient, ChatThreadClient]:
    """Two new users in a new thread (the first creates it), and the first's official chat and thread clients."""
    alice, bob = new_user(server), new_user(server)
    chat = official_chat(server, alice)
    thread_id = chat.create_chat_thread(topic, thread_participants=[
        ChatParticipant(identifier=alice.identifier, display_name=names[0]),
        ChatParticipant(identifier=bob.identifier, display_name=names[1])]).chat_thread.id
    return alice, bob, chat, chat.get_chat_thread_client(thread_id, connection_verify=server.cert_path)
