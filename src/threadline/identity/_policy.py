"""Authentication of identity requests: HMAC-SHA256 with the access key, or an Entra token."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.rest import HttpRequest

from threadline._shared.pipeline import AsyncLoopbackBearerPolicy, LoopbackBearerPolicy

from .hmac import decode_key, sign

__all__ = ["ENTRA_SCOPE", "HMACCredentialPolicy", "auth_policy"]

#: The scope of Entra (AAD) tokens for Azure Communication Services.
ENTRA_SCOPE = "https://communication.azure.com//.default"


class HMACCredentialPolicy(SansIOHTTPPolicy[HttpRequest, Any]):
    """Sign each request with :func:`threadline.identity.hmac.sign`.

    The signed target is the path and query as they go on the wire; ids in
    paths are encoded so that the requests and the aiohttp transports send the
    same bytes (see :func:`threadline._shared.call.path_segment`). The signed
    host is the request's ``host[:port]``, which is its ``Host`` header. The
    policy sits after the retry policy, so each retry gets a fresh date.

    Args:
        credential: the access key (base64) as a string or an ``AzureKeyCredential``
            (read per request, so rotating its key takes effect at once).
    """

    def __init__(self, credential: AzureKeyCredential | str) -> None:
        super().__init__()
        self._credential = credential
        decode_key(self._key())  # fail early on a key that is not base64

    def _key(self) -> str:
        return self._credential if isinstance(self._credential, str) else self._credential.key

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        """Add ``x-ms-date``, ``x-ms-content-sha256`` and the ``Authorization`` header."""
        http_request = request.http_request
        parts = urlsplit(http_request.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        body = http_request.content if isinstance(http_request.content, bytes) else b""
        headers = sign(decode_key(self._key()), http_request.method, target, parts.netloc, body, time.time())
        http_request.headers.update(headers)


def auth_policy(credential: Any, *, is_async: bool) -> Any:
    """Choose the policy for an identity credential.

    Args:
        credential: an access key string, an ``AzureKeyCredential``, or a
            (async) token credential, which is sent as a bearer token with the
            scope :data:`ENTRA_SCOPE`.
        is_async: whether the client is the aio one.

    Raises:
        ValueError: the access key is not base64.
        TypeError: an unsupported credential.
    """
    if isinstance(credential, str | AzureKeyCredential):
        return HMACCredentialPolicy(credential)
    if hasattr(credential, "get_token"):
        policy = AsyncLoopbackBearerPolicy if is_async else LoopbackBearerPolicy
        return policy(credential, ENTRA_SCOPE)
    raise TypeError(
        "Unsupported credential: "
        f"{type(credential).__name__}. Use an access key, AzureKeyCredential or a token credential."
    )
