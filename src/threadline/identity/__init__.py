"""Users, access tokens and HMAC request signing.

The client, the twin of ``azure.communication.identity`` 1.5.0, is
:class:`CommunicationIdentityClient` (async: :mod:`threadline.identity.aio`);
it exports the same names, and its identifiers are the very classes
:mod:`threadline.chat` uses. The server-side primitives live in
:mod:`.tokens` (access tokens) and :mod:`.hmac` (request signing, also used by
the client).
"""

from threadline._shared.identifiers import (
    CommunicationCloudEnvironment,
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

from ._client import CommunicationIdentityClient
from ._models import CommunicationTokenScope

__all__ = [
    "CommunicationCloudEnvironment",
    "CommunicationIdentifier",
    "CommunicationIdentifierKind",
    "CommunicationIdentityClient",
    "CommunicationTokenScope",
    "CommunicationUserIdentifier",
    "CommunicationUserProperties",
    "MicrosoftTeamsAppIdentifier",
    "MicrosoftTeamsAppProperties",
    "MicrosoftTeamsUserIdentifier",
    "MicrosoftTeamsUserProperties",
    "PhoneNumberIdentifier",
    "PhoneNumberProperties",
    "UnknownIdentifier",
    "identifier_from_raw_id",
]
