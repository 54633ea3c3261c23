"""Threadline chat SDK (async): the API of ``azure.communication.chat.aio`` 1.3.0.

Models and identifiers come from :mod:`threadline.chat`, as upstream.
"""

from .. import _realtime as _events
from ._chat_client import ChatClient
from ._chat_thread_client import ChatThreadClient
from ._credential import CommunicationTokenCredential

# Real-time event models (docs/realtime.md): importable from here, but kept out of
# __all__, which must stay exactly upstream's (tests/chat/test_surface.py).
ChatEvent = _events.ChatEvent
ChatMessageDeletedEvent = _events.ChatMessageDeletedEvent
ChatMessageEditedEvent = _events.ChatMessageEditedEvent
ChatMessageReceivedEvent = _events.ChatMessageReceivedEvent
ChatThreadCreatedEvent = _events.ChatThreadCreatedEvent
ChatThreadDeletedEvent = _events.ChatThreadDeletedEvent
ChatThreadPropertiesUpdatedEvent = _events.ChatThreadPropertiesUpdatedEvent
ParticipantsAddedEvent = _events.ParticipantsAddedEvent
ParticipantsRemovedEvent = _events.ParticipantsRemovedEvent
ReadReceiptReceivedEvent = _events.ReadReceiptReceivedEvent
RealTimeNotificationConnectedEvent = _events.RealTimeNotificationConnectedEvent
RealTimeNotificationDisconnectedEvent = _events.RealTimeNotificationDisconnectedEvent
ResumeGapEvent = _events.ResumeGapEvent
TypingIndicatorReceivedEvent = _events.TypingIndicatorReceivedEvent

__all__ = ["ChatClient", "ChatThreadClient", "CommunicationTokenCredential"]
