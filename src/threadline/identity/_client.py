"""The sync ``CommunicationIdentityClient``: users and their access tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from azure.core.credentials import AccessToken, AzureKeyCredential, TokenCredential
from azure.core.tracing.decorator import distributed_trace

from threadline._shared.endpoint import parse_connection_string
from threadline._shared.identifiers import CommunicationUserIdentifier
from threadline._shared.runner import SyncRunner

from ._models import CommunicationTokenScope
from ._policy import auth_policy
from ._requests import IdentityRequests
from ._settings import SDK_MONIKER, identity_settings

__all__ = ["CommunicationIdentityClient"]


class CommunicationIdentityClient:
    """Create users and issue, exchange and revoke their access tokens.

    Requests are signed with HMAC-SHA256 (access key) or carry an Entra
    bearer token (token credential).

    Args:
        endpoint: the service endpoint (``https://...``; ``http://`` only to a loopback host).
        credential: the access key (str), an ``AzureKeyCredential`` or a ``TokenCredential``.
        **kwargs: ``api_version`` (default ``2023-10-01``) and azure-core settings
            (``connection_verify``, ``transport``, retry...).

    Raises:
        ValueError: an invalid endpoint, no credential, or an access key that is not base64.
    """

    def __init__(
        self, endpoint: str, credential: TokenCredential | AzureKeyCredential, **kwargs: Any
    ) -> None:
        self._endpoint, api_version, options = identity_settings(endpoint, credential, kwargs)
        self._requests = IdentityRequests(api_version)
        self._runner = SyncRunner(
            self._endpoint, auth_policy(credential, is_async=False), SDK_MONIKER, **options
        )

    @classmethod
    def from_connection_string(cls, conn_str: str, **kwargs: Any) -> CommunicationIdentityClient:
        """Create a client from ``endpoint=...;accesskey=...``.

        Unlike the official SDK the endpoint keeps its scheme, so
        ``endpoint=http://127.0.0.1:8080/`` talks plain http to a local server.

        Args:
            conn_str: the connection string.
            **kwargs: as for the constructor.

        Returns:
            The client.

        Raises:
            ValueError: a key is missing, or see the constructor.
        """
        endpoint, access_key = parse_connection_string(conn_str)
        return cls(endpoint, AzureKeyCredential(access_key), **kwargs)

    @distributed_trace
    def create_user(self, **kwargs: Any) -> CommunicationUserIdentifier:
        """Create a user.

        Returns:
            The new user.

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        return self._runner.run(self._requests.create_user(kwargs.pop("api_version", None)), **kwargs)

    @distributed_trace
    def create_user_and_token(
        self,
        scopes: Sequence[str | CommunicationTokenScope],
        *,
        token_expires_in: timedelta | None = None,
        **kwargs: Any,
    ) -> tuple[CommunicationUserIdentifier, AccessToken]:
        """Create a user and a token for it.

        Args:
            scopes: the token's scopes (``chat``, ``voip``...).
            token_expires_in: the token's lifetime, 1 to 24 hours (24 h when omitted).

        Returns:
            The user and the token. As in azure-communication-identity 1.5.0,
            ``expires_on`` is the service's ISO 8601 string, not epoch seconds.

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused (400 for a lifetime out of range).
        """
        call = self._requests.create_user_and_token(scopes, token_expires_in, kwargs.pop("api_version", None))
        return self._runner.run(call, **kwargs)

    @distributed_trace
    def delete_user(self, user: CommunicationUserIdentifier, **kwargs: Any) -> None:
        """Delete a user: its tokens stop working and its data is removed.

        Args:
            user: the user.

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        self._runner.run(self._requests.delete_user(user, kwargs.pop("api_version", None)), **kwargs)

    @distributed_trace
    def get_token(
        self,
        user: CommunicationUserIdentifier,
        scopes: Sequence[str | CommunicationTokenScope],
        *,
        token_expires_in: timedelta | None = None,
        **kwargs: Any,
    ) -> AccessToken:
        """Issue a token for a user.

        Args:
            user: the user.
            scopes: the token's scopes.
            token_expires_in: the token's lifetime, 1 to 24 hours (24 h when omitted).

        Returns:
            The token; ``expires_on`` is the service's ISO 8601 string (as upstream).

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.get_token(user, scopes, token_expires_in, kwargs.pop("api_version", None))
        return self._runner.run(call, **kwargs)

    @distributed_trace
    def revoke_tokens(self, user: CommunicationUserIdentifier, **kwargs: Any) -> None:
        """Revoke every token issued to a user so far.

        Args:
            user: the user.

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        self._runner.run(self._requests.revoke_tokens(user, kwargs.pop("api_version", None)), **kwargs)

    @distributed_trace
    def get_token_for_teams_user(
        self, aad_token: str, client_id: str, user_object_id: str, **kwargs: Any
    ) -> AccessToken:
        """Exchange an Entra token of a Teams user for an ACS token.

        Args:
            aad_token: the Entra access token of the Teams user.
            client_id: the Entra application id (checked against the token's ``appid``).
            user_object_id: the user's object id (checked against the token's ``oid``).

        Returns:
            The ACS token; ``expires_on`` is the service's ISO 8601 string (as upstream).

        Raises:
            azure.core.exceptions.HttpResponseError: the service refused.
        """
        call = self._requests.get_token_for_teams_user(
            aad_token, client_id, user_object_id, kwargs.pop("api_version", None)
        )
        return self._runner.run(call, **kwargs)

    def close(self) -> None:
        """Close the connection pool (the official sync client has no ``close``)."""
        self._runner.close()

    def __enter__(self) -> CommunicationIdentityClient:
        self._runner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self._runner.__exit__(*args)
