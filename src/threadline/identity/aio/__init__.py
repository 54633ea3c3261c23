"""The async identity client: the API of ``azure.communication.identity.aio`` 1.5.0."""

from ._client import CommunicationIdentityClient

__all__ = ["CommunicationIdentityClient"]
