"""Identities and their access tokens."""

from __future__ import annotations

from dataclasses import dataclass

from threadline.identity.tokens import SCOPES, InvalidToken, TokenIssuer
from threadline.protocol import ids
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.times import now_ms
from threadline.store.base import Store
from threadline.store.records import UserRecord

from .access import Access
from .actor import Actor

__all__ = ["IdentityService", "IssuedToken"]

MIN_MINUTES, MAX_MINUTES, DEFAULT_MINUTES = 60, 1440, 1440


def _not_found() -> ChatServiceError:
    return ChatServiceError(ErrorKind.NOT_FOUND, "Identity not found.", code="IdentityNotFound", target="id")


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: int


class IdentityService:
    """Creates and deletes identities, issues, verifies and revokes their tokens.

    Args:
        store: the database.
        issuer: signs and verifies tokens.
        resource_id: the resource whose users this serves.
        access: the access cache in front of the store (None: read the store every time).
    """

    def __init__(
        self, store: Store, issuer: TokenIssuer, resource_id: str, access: Access | None = None
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._resource_id = resource_id
        self._access = access or Access(store)

    @staticmethod
    def _minutes(minutes: int | None) -> int:
        if minutes is None:
            return DEFAULT_MINUTES
        if not MIN_MINUTES <= minutes <= MAX_MINUTES:
            raise ChatServiceError(
                ErrorKind.INVALID,
                f"ExpiresInMinutes value {minutes} is invalid. Value must be within the "
                f"[{MIN_MINUTES}, {MAX_MINUTES}] interval.",
                code="ValidationError",
                target="ExpiresInMinutes",
            )
        return minutes

    @staticmethod
    def _scopes(scopes: list[str] | None, target: str) -> list[str]:
        if not scopes:
            raise ChatServiceError(
                ErrorKind.INVALID, "At least one scope is required.", code="ValidationError", target=target
            )
        for scope in scopes:
            if scope not in SCOPES:
                raise ChatServiceError(
                    ErrorKind.INVALID, f"Scope {scope!r} is not valid.", code="ValidationError", target=target
                )
        return list(dict.fromkeys(scopes))

    async def create(
        self, scopes: list[str] | None, minutes: int | None
    ) -> tuple[UserRecord, IssuedToken | None]:
        """Create an identity, with a token when scopes are given.

        Raises:
            ChatServiceError: 400 ``ValidationError`` for a bad lifetime or scope.
        """
        want_token = scopes is not None
        lifetime = self._minutes(minutes)
        chosen = self._scopes(scopes, "CreateTokenWithScopes") if want_token else []
        user = UserRecord(ids.new_user_id(self._resource_id), now_ms())
        await self._store.create_user(user)
        if not want_token:
            return user, None
        token, expires = self._issuer.issue(user.id, chosen, lifetime, user.token_generation)
        return user, IssuedToken(token, expires)

    async def _live(self, user_id: str) -> UserRecord:
        user = await self._store.get_user(user_id)
        if user is None or user.deleted_ms is not None:
            raise _not_found()
        return user

    async def issue(self, user_id: str, scopes: list[str] | None, minutes: int | None) -> IssuedToken:
        """Issue a token for a live identity.

        Raises:
            ChatServiceError: 400 bad scopes or lifetime, 404 unknown identity.
        """
        lifetime = self._minutes(minutes)
        chosen = self._scopes(scopes, "Scopes")
        user = await self._live(user_id)
        token, expires = self._issuer.issue(user.id, chosen, lifetime, user.token_generation)
        return IssuedToken(token, expires)

    async def revoke(self, user_id: str) -> None:
        """Invalidate every token issued to the identity so far.

        Raises:
            ChatServiceError: 404 unknown identity.
        """
        try:
            generation = await self._store.revoke_tokens(user_id)
        finally:
            await self._access.changed(users=[user_id])
        if generation is None:
            raise _not_found()

    async def delete(self, user_id: str) -> None:
        """Delete an identity: its tokens stop working and it leaves every thread.

        Raises:
            ChatServiceError: 404 unknown identity.
        """
        try:
            deleted = await self._store.delete_user(user_id, now_ms())
        finally:
            await self._access.changed(users=[user_id])
        if not deleted:
            raise _not_found()

    async def exchange_teams_token(self, token: str, app_id: str, user_id: str) -> IssuedToken:
        """Exchange a Microsoft Entra token of a Teams user for an ACS token: not possible here.

        Verifying the Entra token needs Microsoft Entra ID, which a self-hosted server does not reach.

        Raises:
            ChatServiceError: always, 403 ``TeamsExchangeUnsupported``.
        """
        raise ChatServiceError(
            ErrorKind.FORBIDDEN,
            "Teams user token exchange needs Microsoft Entra ID, which a self-hosted server does not reach.",
            code="TeamsExchangeUnsupported",
        )

    async def authenticate(self, token: str) -> Actor:
        """Verify a user access token against its signature, expiry, revocation and deletion.

        The signature and expiry are checked on every call; the user's deletion and token
        generation come from the access cache when it holds them (kept only for live users
        whose token's signature was valid).

        Raises:
            ChatServiceError: 401 for any failure.
        """
        try:
            claims = self._issuer.verify(token)
        except InvalidToken:
            raise ChatServiceError(ErrorKind.UNAUTHORIZED) from None
        generation = await self._access.token_generation(claims.user_id, claims.generation)
        if generation != claims.generation:
            raise ChatServiceError(ErrorKind.UNAUTHORIZED)
        return Actor(claims.user_id, claims.scopes)
