"""Reading ACS user tokens and deciding when to refresh them.

Shared by the sync and async ``CommunicationTokenCredential``. Unlike the
official credential, the JWT payload is decoded as base64url (the JWT
alphabet), so a payload containing ``-`` or ``_`` is read correctly.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from azure.core.credentials import AccessToken

__all__ = [
    "ON_DEMAND_WINDOW",
    "PROACTIVE_WINDOW",
    "TOKEN_FORMAT_ERROR",
    "check_refreshed",
    "expiring_soon",
    "is_valid",
    "next_refresh_delay",
    "parse_token",
]

TOKEN_FORMAT_ERROR = "Token is not formatted correctly"
#: Refresh on demand when fewer than this many seconds remain (2 min, as the official).
ON_DEMAND_WINDOW = 120
#: With ``proactive_refresh``, refresh this many seconds before expiry (10 min).
PROACTIVE_WINDOW = 600
CLOSED_ERROR = "An instance of CommunicationTokenCredential cannot be reused once it has been closed."
PROACTIVE_WITHOUT_REFRESHER = "When 'proactive_refresh' is True, 'token_refresher' must not be None."


def _now() -> float:
    return time.time()


def parse_token(token: Any) -> AccessToken:
    """Read a JWT's ``exp`` into an :class:`~azure.core.credentials.AccessToken`.

    Args:
        token: ``<header>.<payload>.<signature>``; only the payload's ``exp`` is read.

    Returns:
        The token and its expiry as integer epoch seconds.

    Raises:
        TypeError: ``token`` is not a string ("Token must be a string.").
        ValueError: not a JWT, or no numeric ``exp`` ("Token is not formatted correctly").
    """
    if not isinstance(token, str):
        raise TypeError("Token must be a string.")
    parts = token.split(".")
    if len(parts) < 3:
        raise ValueError(TOKEN_FORMAT_ERROR)
    segment = parts[1]
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        payload = json.loads(raw.decode("utf-8"))
        exp = payload["exp"]
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise ValueError(TOKEN_FORMAT_ERROR)
    except (binascii.Error, ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(TOKEN_FORMAT_ERROR) from exc
    return AccessToken(token, int(exp))


def is_valid(token: AccessToken) -> bool:
    """Return True while the token has not expired."""
    return _now() < token.expires_on


def expiring_soon(token: AccessToken, proactive: bool) -> bool:
    """Return True inside the refresh window (10 min proactive, 2 min on demand)."""
    window = PROACTIVE_WINDOW if proactive else ON_DEMAND_WINDOW
    return token.expires_on - _now() < window


def check_refreshed(token: Any) -> AccessToken:
    """Check what a ``token_refresher`` returned, with the official SDK's errors.

    Raises:
        AttributeError: not an AccessToken (no ``expires_on``), e.g. a plain string.
        ValueError: "The token returned from the token_refresher is expired."
    """
    if not _now() < token.expires_on:
        raise ValueError("The token returned from the token_refresher is expired.")
    return token  # type: ignore[no-any-return]


def next_refresh_delay(token: AccessToken) -> float:
    """Seconds until the next proactive refresh.

    Ten minutes before expiry; when already inside that window, halfway
    through the remaining lifetime (as the official credential does).
    """
    ttl = token.expires_on - _now()
    if ttl < PROACTIVE_WINDOW:
        return max(ttl / 2, 0.0)
    return ttl - PROACTIVE_WINDOW
