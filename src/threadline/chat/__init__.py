"""Threadline chat SDK (sync): the API of ``azure.communication.chat`` 1.3.0.

Swap ``from azure.communication.chat import ...`` for
``from threadline.chat import ...``; the same names, signatures, models and
exceptions work against Threadline and against Azure Communication Services.
The async twin is :mod:`threadline.chat.aio`. See ``docs/sdk.md`` for the few
intended differences (http to loopback hosts, shared thread-client settings,
base64url token parsing...).
"""

from threadline._shared.identifiers import (
    CommunicationCloudEnvironment as CommunicationCloudEnvironment,
)
from threadline._shared.identifiers import (
    CommunicationIdentifier,
    CommunicationIdentifierKind,
    CommunicationUserIdentifier,
    CommunicationUserProperties,
    MicrosoftTeamsAppIdentifier,
    MicrosoftTeamsAppProperties,
    MicrosoftTeamsUserIdentifier,
    MicrosoftTeamsUserProperties,
    PhoneNumberIdentifier,
    PhoneNumberProperties,
    UnknownIdentifier,
    identifier_from_raw_id,
)

from . import _realtime
from ._chat_client import ChatClient
from ._chat_thread_client import ChatThreadClient
from ._credential import CommunicationTokenCredential
from ._models import (
    ChatAttachment,
    ChatAttachmentType,
    ChatError,
    ChatMessage,
    ChatMessageContent,
    ChatMessageReadReceipt,
    ChatMessageType,
    ChatParticipant,
    ChatThreadItem,
    ChatThreadProperties,
    CreateChatThreadResult,
    SendChatMessageResult,
)

# Real-time event models (docs/realtime.md): importable from here, but kept out of
# __all__, which must stay exactly upstream's (tests/chat/test_surface.py).
ChatEvent = _realtime.ChatEvent
ChatMessageDeletedEvent = _realtime.ChatMessageDeletedEvent
ChatMessageEditedEvent = _realtime.ChatMessageEditedEvent
ChatMessageReceivedEvent = _realtime.ChatMessageReceivedEvent
ChatThreadCreatedEvent = _realtime.ChatThreadCreatedEvent
ChatThreadDeletedEvent = _realtime.ChatThreadDeletedEvent
ChatThreadPropertiesUpdatedEvent = _realtime.ChatThreadPropertiesUpdatedEvent
ParticipantsAddedEvent = _realtime.ParticipantsAddedEvent
ParticipantsRemovedEvent = _realtime.ParticipantsRemovedEvent
ReadReceiptReceivedEvent = _realtime.ReadReceiptReceivedEvent
RealTimeNotificationConnectedEvent = _realtime.RealTimeNotificationConnectedEvent
RealTimeNotificationDisconnectedEvent = _realtime.RealTimeNotificationDisconnectedEvent
ResumeGapEvent = _realtime.ResumeGapEvent
TypingIndicatorReceivedEvent = _realtime.TypingIndicatorReceivedEvent

# Exactly the names of ``azure.communication.chat.__all__``; CommunicationCloudEnvironment
# is importable too (the identifier constructors take it) but, as upstream, not listed.
__all__ = [
    "ChatAttachment",
    "ChatAttachmentType",
    "ChatClient",
    "ChatError",
    "ChatMessage",
    "ChatMessageContent",
    "ChatMessageReadReceipt",
    "ChatMessageType",
    "ChatParticipant",
    "ChatThreadClient",
    "ChatThreadItem",
    "ChatThreadProperties",
    "CommunicationIdentifier",
    "CommunicationIdentifierKind",
    "CommunicationTokenCredential",
    "CommunicationUserIdentifier",
    "CommunicationUserProperties",
    "CreateChatThreadResult",
    "MicrosoftTeamsAppIdentifier",
    "MicrosoftTeamsAppProperties",
    "MicrosoftTeamsUserIdentifier",
    "MicrosoftTeamsUserProperties",
    "PhoneNumberIdentifier",
    "PhoneNumberProperties",
    "SendChatMessageResult",
    "UnknownIdentifier",
    "identifier_from_raw_id",
]
