"""Who makes a request."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Actor"]


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated chat user and the scopes of its token."""

    user_id: str
    scopes: tuple[str, ...] = ("chat",)

    @property
    def can_manage_threads(self) -> bool:
        """Create, delete and retitle threads: the full ``chat`` scope."""
        return "chat" in self.scopes

    @property
    def can_manage_members(self) -> bool:
        """Add and remove participants: ``chat`` or ``chat.join``."""
        return "chat" in self.scopes or "chat.join" in self.scopes

    @property
    def can_chat(self) -> bool:
        """Read and write messages: any chat scope."""
        scopes = self.scopes
        return "chat" in scopes or any(s.startswith("chat") for s in scopes)
