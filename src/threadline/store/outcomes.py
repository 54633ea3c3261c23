"""What a store write carries and returns, and the errors a store raises (see :mod:`.base`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .records import Event

__all__ = [
    "Effects", "EventFactory", "NotAllowed", "Outcome", "StoreError", "StoreReadOnly", "StoreUnavailable",
    "TooManyParticipants",
]

T = TypeVar("T")

#: Turns a written value into (event type, JSON payload) pairs.
EventFactory = Callable[[T], list[tuple[str, bytes]]]


class StoreError(Exception):
    """Base of the store's own errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is shutting down."""


class NotAllowed(StoreError):
    """A send's sender is not a live member of a live thread (checked inside the write); nothing was written.

    Attributes:
        thread_missing: True when the thread does not exist or is deleted; False when the
            sender is not (or no longer) a member.
    """

    def __init__(self, thread_missing: bool) -> None:
        super().__init__("no such thread" if thread_missing else "the sender is not a member of the thread")
        self.thread_missing = thread_missing


class TooManyParticipants(StoreError):
    """The write would leave a thread with more live members than allowed; nothing was written.

    Attributes:
        limit: the most live members the write was allowed to leave.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(f"a thread holds at most {limit} participants")
        self.limit = limit


class StoreReadOnly(StoreUnavailable):
    """The database answers but refuses writes (a read-only file, a standby, a read-only transaction)."""


@dataclass(slots=True)
class Effects(Generic[T]):
    """What a write carries besides its data.

    Attributes:
        idempotency: ``(scope, key)`` making the write happen at most once.
        result: turns the written value into the string a replay returns.
        events: builds the events of the write (see the module docstring).
        reveals: the creation time (epoch ms) of the message whose content or existence
            the events reveal; members whose share-history time is later do not receive
            them. None (or no callable) for events that reveal no message.
    """

    idempotency: tuple[str, str] | None = None
    result: Callable[[T], str] | None = None
    events: Callable[[T], list[tuple[str, bytes]]] | None = None
    reveals: Callable[[T], int | None] | None = None


@dataclass(slots=True)
class Outcome(Generic[T]):
    """The result of a write: its value, or the stored result of a replay."""

    value: T | None = None
    events: list[Event] = field(default_factory=list)
    replayed: str | None = None
