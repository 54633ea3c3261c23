"""Threadline chat SDK (async): the API of ``azure.communication.chat.aio`` 1.3.0.

Models and identifiers come from :mod:`threadline.chat`, as upstream; the
real-time event models are exported here too (docs/realtime.md).
"""

from .._realtime import (
    ChatEvent,
    ChatMessageDeletedEvent,
    ChatMessageEditedEvent,
    ChatMessageReceivedEvent,
    ChatThreadCreatedEvent,
    ChatThreadDeletedEvent,
    ChatThreadPropertiesUpdatedEvent,
    ParticipantsAddedEvent,
    ParticipantsRemovedEvent,
    ReadReceiptReceivedEvent,
    RealTimeNotificationConnectedEvent,
    RealTimeNotificationDisconnectedEvent,
    ResumeGapEvent,
    TypingIndicatorReceivedEvent,
)
from ._chat_client import ChatClient
from ._chat_thread_client import ChatThreadClient
from ._credential import CommunicationTokenCredential

__all__ = [
    "ChatClient",
    "ChatEvent",
    "ChatMessageDeletedEvent",
    "ChatMessageEditedEvent",
    "ChatMessageReceivedEvent",
    "ChatThreadClient",
    "ChatThreadCreatedEvent",
    "ChatThreadDeletedEvent",
    "ChatThreadPropertiesUpdatedEvent",
    "CommunicationTokenCredential",
    "ParticipantsAddedEvent",
    "ParticipantsRemovedEvent",
    "ReadReceiptReceivedEvent",
    "RealTimeNotificationConnectedEvent",
    "RealTimeNotificationDisconnectedEvent",
    "ResumeGapEvent",
    "TypingIndicatorReceivedEvent",
]
