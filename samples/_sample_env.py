"""Configuration shared by the samples: where the server is and who the users are.

Environment variables:

* ``THREADLINE_ENDPOINT``: the chat endpoint, e.g. ``http://127.0.0.1:8080`` or
  ``https://chat.example.com`` (or a real ``https://<resource>.communication.azure.com``).
* ``THREADLINE_CONNECTION_STRING``: ``endpoint=...;accesskey=...``, used to create users and tokens.
* ``THREADLINE_CA``: optional CA certificate (PEM) for the identity calls made here. The
  chat clients of the samples are built exactly as in the official docs, with no
  ``connection_verify``; to trust a self-signed certificate there, set
  ``REQUESTS_CA_BUNDLE`` (sync samples) or ``SSL_CERT_FILE`` (async samples) to it.
"""

from __future__ import annotations

import os
from typing import Any

from threadline.identity import CommunicationIdentityClient, CommunicationUserIdentifier

__all__ = ["endpoint", "new_user", "new_user_and_token"]


def endpoint() -> str:
    """The chat endpoint."""
    return os.environ["THREADLINE_ENDPOINT"]


def _identity_client() -> CommunicationIdentityClient:
    options: dict[str, Any] = {}
    if os.environ.get("THREADLINE_CA"):
        options["connection_verify"] = os.environ["THREADLINE_CA"]
    return CommunicationIdentityClient.from_connection_string(os.environ["THREADLINE_CONNECTION_STRING"], **options)


def new_user() -> CommunicationUserIdentifier:
    """Create a user."""
    with _identity_client() as client:
        return client.create_user()


def new_user_and_token() -> tuple[CommunicationUserIdentifier, str]:
    """Create a user with a chat token."""
    with _identity_client() as client:
        user, token = client.create_user_and_token(["chat"])
    return user, token.token
