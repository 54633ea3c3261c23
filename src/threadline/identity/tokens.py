"""ACS user access tokens: JWTs the server signs and the SDKs can read.

A token carries the claims of a real ACS token (``skypeid``, ``scp``, ``csi``,
``exp``, ``acsScope``, ``resourceId``, ``iat``) plus ``gen``, the user's token
generation: revoking a user's tokens bumps the generation, so every token
issued before is refused. Tokens are HS256-signed with a key derived from the
resource's access key, so every node that shares the key verifies them.

The official ``CommunicationTokenCredential`` decodes the payload with the
*standard* base64 alphabet, so the payload segment must hold no ``-`` or
``_``. For ASCII JSON those appear only where a byte ``>``, ``?``, ``~`` or
DEL ends a 3-byte group; :class:`_SafeJSON` writes those four as ``\\u00XX``
escapes (valid JSON that decodes to the same text), so no payload can trip it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["SCOPES", "InvalidToken", "TokenClaims", "TokenIssuer", "derive_signing_key"]

#: The scopes ACS knows, with the opaque ``scp`` bits this server gives them.
SCOPES: dict[str, int] = {
    "chat": 0x100,
    "voip": 0x600,
    "chat.join": 0x080,
    "chat.join.limited": 0x040,
    "voip.join": 0x020,
}
_ALGORITHM = "HS256"
_ESCAPES = str.maketrans({">": "\\u003e", "?": "\\u003f", "~": "\\u007e", "\x7f": "\\u007f"})


class _SafeJSON(json.JSONEncoder):
    """ASCII JSON whose base64 form never holds ``-`` or ``_``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["ensure_ascii"] = True
        super().__init__(**kwargs)

    def encode(self, o: Any) -> str:
        # These characters can only stand inside JSON strings, where an escape means the same.
        return super().encode(o).translate(_ESCAPES)


class InvalidToken(Exception):
    """The token is malformed, badly signed or expired."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says."""

    user_id: str
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int
    generation: int


def derive_signing_key(access_key: bytes) -> bytes:
    """Derive the token signing key from the resource's decoded access key."""
    return hmac.new(access_key, b"threadline/access-token/v1", hashlib.sha256).digest()


class TokenIssuer:
    """Issues and verifies user access tokens for one resource.

    Args:
        signing_key: the HS256 key (see :func:`derive_signing_key`).
        resource_id: the resource id written in the ``resourceId`` claim.
    """

    def __init__(self, signing_key: bytes, resource_id: str, *, cache_size: int = 8192) -> None:
        self._key = signing_key
        self._resource_id = resource_id
        # Checking a signature is a pure function of the token: remember the last few thousand.
        self._decode = functools.lru_cache(maxsize=cache_size)(self._decode_uncached)

    def issue(
        self, user_id: str, scopes: list[str] | tuple[str, ...], minutes: int, generation: int,
        now: float | None = None,
    ) -> tuple[str, int]:
        """Issue a token.

        Args:
            user_id: the user's raw id (``8:acs:...``).
            scopes: ACS scopes (``chat``, ``voip``...).
            minutes: lifetime in minutes.
            generation: the user's current token generation.
            now: the issue time in epoch seconds (the clock when omitted).

        Returns:
            The token and its expiry in epoch seconds.
        """
        issued = int(now if now is not None else time.time())
        expires = issued + minutes * 60
        bits = 0
        for scope in scopes:
            bits |= SCOPES.get(scope, 0)
        skype_id = user_id[2:] if user_id.startswith("8:") else user_id
        claims: dict[str, object] = {
            "skypeid": skype_id,
            "scp": bits,
            "csi": str(issued),
            "exp": expires,
            "rgn": "local",
            "acsScope": ",".join(scopes),
            "resourceId": self._resource_id,
            "resourceLocation": "local",
            "iat": issued,
            "gen": generation,
        }
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM, json_encoder=_SafeJSON)
        payload = token.split(".")[1]
        if "-" in payload or "_" in payload:  # pragma: no cover - impossible with _SafeJSON
            raise RuntimeError("could not form a token the ACS SDKs can read")
        return token, expires

    def verify(self, token: str, now: float | None = None) -> TokenClaims:
        """Verify a token's signature and expiry.

        Signatures are checked once per token and remembered; expiry is checked on every call.

        Raises:
            InvalidToken: the token is malformed, not ours, or expired.
        """
        claims = self._decode(token)
        moment = now if now is not None else time.time()
        if claims.expires_at <= moment:
            raise InvalidToken("token expired")
        return claims

    def _decode_uncached(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "iat", "skypeid"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if claims.get("resourceId") != self._resource_id:
            raise InvalidToken("token of another resource")
        try:
            return TokenClaims(
                user_id="8:" + str(claims["skypeid"]),
                scopes=tuple(s for s in str(claims.get("acsScope", "")).split(",") if s),
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
                generation=int(claims.get("gen", 0)),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidToken("malformed claims") from exc
