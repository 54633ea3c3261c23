"""Raw identifiers (``8:acs:...``, ``4:+1...``) and the ids the service mints.

A raw id names a chat identity on the wire. :func:`parse_raw_id` tells its
kind and properties exactly as the official SDKs' ``identifier_from_raw_id``
does, so the server and the SDK agree on every string.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACS_USER_PREFIXES",
    "RawId",
    "is_communication_user",
    "new_thread_id",
    "new_user_id",
    "parse_raw_id",
]

#: Kind names, as the SDK's ``CommunicationIdentifierKind`` values.
COMMUNICATION_USER = "communication_user"
PHONE_NUMBER = "phone_number"
MICROSOFT_TEAMS_USER = "microsoft_teams_user"
MICROSOFT_TEAMS_APP = "microsoft_teams_app"
UNKNOWN = "unknown"

ACS_USER_PREFIXES: tuple[str, ...] = ("8:acs:", "8:dod-acs:", "8:gcch-acs:", "8:spool:")
PHONE_PREFIX = "4:"

# prefix -> (kind, cloud, anonymous); the id itself is the rest of the raw id.
_TEAMS_PREFIXES: dict[str, tuple[str, str | None, bool]] = {
    "8:teamsvisitor:": (MICROSOFT_TEAMS_USER, None, True),
    "8:orgid:": (MICROSOFT_TEAMS_USER, "PUBLIC", False),
    "8:dod:": (MICROSOFT_TEAMS_USER, "DOD", False),
    "8:gcch:": (MICROSOFT_TEAMS_USER, "GCCH", False),
    "28:orgid:": (MICROSOFT_TEAMS_APP, "PUBLIC", False),
    "28:dod:": (MICROSOFT_TEAMS_APP, "DOD", False),
    "28:gcch:": (MICROSOFT_TEAMS_APP, "GCCH", False),
}


@dataclass(frozen=True, slots=True)
class RawId:
    """What a raw id says: its kind and the properties of that kind.

    ``properties`` uses the keys of the SDK identifier classes: ``id`` for a
    communication user, ``value`` for a phone number, ``user_id`` /
    ``is_anonymous`` / ``cloud`` for a Teams user, ``app_id`` / ``cloud`` for a
    Teams app, ``identifier`` for anything else.
    """

    raw_id: str
    kind: str
    properties: dict[str, Any] = field(default_factory=dict)


def parse_raw_id(raw_id: str) -> RawId:
    """Tell the kind of a raw id, as ``identifier_from_raw_id`` of the SDKs does.

    Args:
        raw_id: a raw id such as ``8:acs:<resource>_<guid>`` or ``4:+14255550123``.

    Returns:
        The kind and properties; unrecognised strings are of kind ``unknown``.
    """
    if raw_id.startswith(PHONE_PREFIX):
        return RawId(raw_id, PHONE_NUMBER, {"value": raw_id[len(PHONE_PREFIX) :]})
    segments = raw_id.split(":", 2)
    if len(segments) < 3:
        return RawId(raw_id, UNKNOWN, {"identifier": raw_id})
    prefix = f"{segments[0]}:{segments[1]}:"
    rest = segments[2]
    if prefix in _TEAMS_PREFIXES:
        kind, cloud, anonymous = _TEAMS_PREFIXES[prefix]
        if kind == MICROSOFT_TEAMS_APP:
            return RawId(raw_id, kind, {"app_id": rest, "cloud": cloud})
        return RawId(raw_id, kind, {"user_id": rest, "is_anonymous": anonymous, "cloud": cloud})
    if prefix in ACS_USER_PREFIXES:
        return RawId(raw_id, COMMUNICATION_USER, {"id": raw_id})
    return RawId(raw_id, UNKNOWN, {"identifier": raw_id})


def is_communication_user(raw_id: str) -> bool:
    """Return True when ``raw_id`` names an ACS communication user."""
    return parse_raw_id(raw_id).kind == COMMUNICATION_USER


def new_user_id(resource_id: str) -> str:
    """Mint a user raw id ``8:acs:<resourceId>_<uuid>`` as the real service does."""
    return f"8:acs:{resource_id}_{uuid.uuid4()}"


def new_thread_id() -> str:
    """Mint a thread id ``19:<32 hex>@thread.v2``; the alphabet never needs escaping."""
    return f"19:{secrets.token_hex(16)}@thread.v2"
