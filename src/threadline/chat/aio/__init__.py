"""Threadline chat SDK (async): the API of ``azure.communication.chat.aio`` 1.3.0.

Models and identifiers come from :mod:`threadline.chat`, as upstream.
"""

from ._chat_client import ChatClient
from ._chat_thread_client import ChatThreadClient
from ._credential import CommunicationTokenCredential

__all__ = ["ChatClient", "ChatThreadClient", "CommunicationTokenCredential"]
