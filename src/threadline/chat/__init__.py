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

from ._chat_client import ChatClient
from ._chat_thread_client import ChatThreadClient
from ._credential import CommunicationTokenCredential
from ._images import UploadChatImageResult
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
from ._realtime import (
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
from ._retention import ChatRetentionPolicy, NoneRetentionPolicy, ThreadCreationDateRetentionPolicy

# The names of ``azure.communication.chat.__all__``, then Threadline's extensions: the real-time
# event models (docs/realtime.md) and the 2025-03-15 retention policy models (docs/sdk.md).
# CommunicationCloudEnvironment is importable too (the identifier constructors take it) but, as
# upstream, not listed.
__all__ = [
    "ChatAttachment",
    "ChatAttachmentType",
    "ChatClient",
    "ChatError",
    "ChatEvent",
    "ChatMessage",
    "ChatMessageContent",
    "ChatMessageDeletedEvent",
    "ChatMessageEditedEvent",
    "ChatMessageReadReceipt",
    "ChatMessageReceivedEvent",
    "ChatMessageType",
    "ChatParticipant",
    "ChatRetentionPolicy",
    "ChatThreadClient",
    "ChatThreadCreatedEvent",
    "ChatThreadDeletedEvent",
    "ChatThreadItem",
    "ChatThreadProperties",
    "ChatThreadPropertiesUpdatedEvent",
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
    "NoneRetentionPolicy",
    "ParticipantsAddedEvent",
    "ParticipantsRemovedEvent",
    "PhoneNumberIdentifier",
    "PhoneNumberProperties",
    "ReadReceiptReceivedEvent",
    "RealTimeNotificationConnectedEvent",
    "RealTimeNotificationDisconnectedEvent",
    "ResumeGapEvent",
    "SendChatMessageResult",
    "ThreadCreationDateRetentionPolicy",
    "TypingIndicatorReceivedEvent",
    "UnknownIdentifier",
    "UploadChatImageResult",
    "identifier_from_raw_id",
]
