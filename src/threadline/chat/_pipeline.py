"""Constructor logic shared by the four chat clients: endpoint, credential, api-version, settings."""

from __future__ import annotations

from typing import Any

from threadline import __version__
from threadline._shared.endpoint import normalize_endpoint
from threadline.protocol.versions import DEFAULT_CHAT_VERSION

__all__ = ["SDK_MONIKER", "ClientSettings", "client_settings"]

SDK_MONIKER = f"threadline-chat/{__version__}"


class ClientSettings:
    """What a chat client was built with; thread clients it creates inherit it.

    Attributes:
        endpoint: the checked endpoint (``https://...``, or ``http://`` to a loopback host).
        api_version: the ``api-version`` sent by default.
        options: the remaining azure-core keyword arguments (transport, ``connection_verify``,
            ``per_call_policies``, retry settings...).
    """

    def __init__(self, endpoint: str, api_version: str, options: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.api_version = api_version
        self.options = options

    def inherited(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for a thread client: these settings, then ``overrides``."""
        return {**self.options, "api_version": self.api_version, **overrides}


def client_settings(endpoint: str, credential: Any, kwargs: dict[str, Any]) -> ClientSettings:
    """Check constructor arguments as the official clients do.

    Raises:
        ValueError: no credential ("credential can not be None"), or a bad endpoint
            (see :func:`threadline._shared.endpoint.normalize_endpoint`).
    """
    if not credential:
        raise ValueError("credential can not be None")
    options = dict(kwargs)
    api_version = options.pop("api_version", None) or DEFAULT_CHAT_VERSION
    return ClientSettings(normalize_endpoint(endpoint), api_version, options)
