"""Every identity operation as a :class:`~threadline._shared.call.Call` (shared by both twins)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from azure.core.credentials import AccessToken

from threadline._shared.call import Call, parse_nothing, path_segment
from threadline._shared.identifiers import CommunicationUserIdentifier
from threadline.protocol import wire

from ._models import CommunicationTokenScope

__all__ = ["IdentityRequests"]


def _minutes(duration: timedelta | None) -> int | None:
    """Whole minutes of a ``token_expires_in``, as the official SDK sends them."""
    return None if duration is None else int(duration.total_seconds() / 60)


def _scopes(scopes: Sequence[CommunicationTokenScope | str]) -> list[str]:
    return [s.value if isinstance(s, CommunicationTokenScope) else str(s) for s in scopes]


def _access_token(model: wire.AccessTokenModel) -> AccessToken:
    # As azure-communication-identity 1.5.0: expires_on is the service's ISO 8601
    # string, not epoch seconds (see docs/sdk.md).
    return AccessToken(model.token, cast(int, model.expires_on))


def _user_path(user: CommunicationUserIdentifier) -> str:
    return "/identities/" + path_segment(str(user.properties["id"]))


class IdentityRequests:
    """Builds the calls of ``CommunicationIdentityClient``.

    Args:
        api_version: the ``api-version`` sent unless a call overrides it.
    """

    def __init__(self, api_version: str) -> None:
        self.api_version = api_version

    def _call(self, method: str, path: str, success: int, parse: Any, api_version: str | None,
              body: Any = None) -> Call[Any]:
        return Call(
            method,
            path,
            success,
            parse,
            query={"api-version": api_version or self.api_version},
            body=wire.encode(body) if body is not None else None,
        )

    def create_user(self, api_version: str | None = None) -> Call[CommunicationUserIdentifier]:
        """``POST /identities`` with no body."""

        def parse(data: bytes) -> CommunicationUserIdentifier:
            user_id = wire.decode(data, wire.CreateIdentityResult).identity.id
            return CommunicationUserIdentifier(user_id, raw_id=user_id)

        return self._call("POST", "/identities", 201, parse, api_version)

    def create_user_and_token(
        self,
        scopes: Sequence[CommunicationTokenScope | str],
        token_expires_in: timedelta | None,
        api_version: str | None = None,
    ) -> Call[tuple[CommunicationUserIdentifier, AccessToken]]:
        """``POST /identities`` with ``createTokenWithScopes`` and ``expiresInMinutes``."""
        body = wire.CreateIdentityRequest(
            create_token_with_scopes=_scopes(scopes), expires_in_minutes=_minutes(token_expires_in)
        )

        def parse(data: bytes) -> tuple[CommunicationUserIdentifier, AccessToken]:
            result = wire.decode(data, wire.CreateIdentityResult)
            if result.access_token is None:
                raise ValueError("the service returned no access token")
            user = CommunicationUserIdentifier(result.identity.id, raw_id=result.identity.id)
            return user, _access_token(result.access_token)

        return self._call("POST", "/identities", 201, parse, api_version, body)

    def get_token(
        self,
        user: CommunicationUserIdentifier,
        scopes: Sequence[CommunicationTokenScope | str],
        token_expires_in: timedelta | None,
        api_version: str | None = None,
    ) -> Call[AccessToken]:
        """``POST /identities/{id}/:issueAccessToken``."""
        body = wire.IssueTokenRequest(scopes=_scopes(scopes), expires_in_minutes=_minutes(token_expires_in))

        def parse(data: bytes) -> AccessToken:
            return _access_token(wire.decode(data, wire.AccessTokenModel))

        return self._call("POST", _user_path(user) + "/:issueAccessToken", 200, parse, api_version, body)

    def revoke_tokens(self, user: CommunicationUserIdentifier, api_version: str | None = None) -> Call[None]:
        """``POST /identities/{id}/:revokeAccessTokens`` with no body."""
        return self._call("POST", _user_path(user) + "/:revokeAccessTokens", 204, parse_nothing, api_version)

    def delete_user(self, user: CommunicationUserIdentifier, api_version: str | None = None) -> Call[None]:
        """``DELETE /identities/{id}``."""
        return self._call("DELETE", _user_path(user), 204, parse_nothing, api_version)

    def get_token_for_teams_user(
        self, aad_token: str, client_id: str, user_object_id: str, api_version: str | None = None
    ) -> Call[AccessToken]:
        """``POST /teamsUser/:exchangeAccessToken``."""
        body = wire.TeamsExchangeRequest(token=aad_token, app_id=client_id, user_id=user_object_id)

        def parse(data: bytes) -> AccessToken:
            return _access_token(wire.decode(data, wire.AccessTokenModel))

        return self._call("POST", "/teamsUser/:exchangeAccessToken", 200, parse, api_version, body)
