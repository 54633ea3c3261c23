"""Identity models: the token scopes."""

from __future__ import annotations

from enum import Enum

from azure.core import CaseInsensitiveEnumMeta

__all__ = ["CommunicationTokenScope"]


class CommunicationTokenScope(str, Enum, metaclass=CaseInsensitiveEnumMeta):  # noqa: UP042 - str() as upstream
    """The scopes of an access token."""

    CHAT = "chat"
    """Full access to the Chat APIs."""
    VOIP = "voip"
    """Full access to the Calling APIs."""
    CHAT_JOIN = "chat.join"
    """Chat without creating, deleting or updating threads."""
    CHAT_JOIN_LIMITED = "chat.join.limited"
    """Like ``chat.join``, and without adding or removing participants."""
    VOIP_JOIN = "voip.join"
    """Calling without starting calls."""
