"""Thread retention policies (api-version 2025-03-15), as typed models.

The JS SDK 1.6.0 names translated to Python: ``ChatRetentionPolicy`` is the
base, discriminated by ``kind``; ``ThreadCreationDateRetentionPolicy`` deletes
a thread ``delete_thread_after_days`` days after its creation (30 to 90 on
ACS and Threadline); ``NoneRetentionPolicy`` keeps it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChatRetentionPolicy",
    "NoneRetentionPolicy",
    "ThreadCreationDateRetentionPolicy",
    "retention_from_wire",
    "retention_to_wire",
]


class ChatRetentionPolicy:
    """A thread's data retention policy; a policy of a kind this SDK does not know stays this base class.

    Args:
        kind: ``threadCreationDate`` or ``none``.
    """

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        self.kind = kind

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class ThreadCreationDateRetentionPolicy(ChatRetentionPolicy):
    """Delete the thread a number of days after it was created.

    Args:
        delete_thread_after_days: days from the thread's creation to its deletion (30 to 90).
    """

    def __init__(self, *, delete_thread_after_days: int, **kwargs: Any) -> None:
        super().__init__(kind="threadCreationDate")
        self.delete_thread_after_days = delete_thread_after_days


class NoneRetentionPolicy(ChatRetentionPolicy):
    """Keep the thread until someone deletes it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kind="none")


def retention_to_wire(policy: ChatRetentionPolicy) -> dict[str, Any]:
    """The JSON ``retentionPolicy`` of a policy.

    Raises:
        TypeError: ``policy`` is not a :class:`ChatRetentionPolicy`.
    """
    if not isinstance(policy, ChatRetentionPolicy):
        raise TypeError(f"retention_policy must be a ChatRetentionPolicy, not {type(policy).__name__}")
    if isinstance(policy, ThreadCreationDateRetentionPolicy):
        return {"kind": policy.kind, "deleteThreadAfterDays": policy.delete_thread_after_days}
    return {"kind": policy.kind}


def retention_from_wire(value: dict[str, Any] | None) -> ChatRetentionPolicy | None:
    """Read a ``retentionPolicy`` from a response (None when absent)."""
    if value is None:
        return None
    kind = str(value.get("kind"))
    if kind == "threadCreationDate" and isinstance(value.get("deleteThreadAfterDays"), int):
        return ThreadCreationDateRetentionPolicy(delete_thread_after_days=value["deleteThreadAfterDays"])
    if kind == "none":
        return NoneRetentionPolicy()
    return ChatRetentionPolicy(kind=kind)
