"""Constructor logic shared by the sync and async identity clients."""

from __future__ import annotations

from typing import Any

from threadline import __version__
from threadline._shared.endpoint import normalize_endpoint
from threadline.protocol.versions import DEFAULT_IDENTITY_VERSION

__all__ = ["SDK_MONIKER", "identity_settings"]

SDK_MONIKER = f"threadline-identity/{__version__}"


def identity_settings(
    endpoint: str, credential: Any, kwargs: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """Check the constructor arguments.

    Returns:
        The endpoint, the api-version and the remaining azure-core options.

    Raises:
        ValueError: the endpoint is not a string or is invalid (plain http only
            to loopback hosts), or there is no credential.
    """
    if not isinstance(endpoint, str):
        raise ValueError("Account URL must be a string.")
    if not credential:
        raise ValueError("You need to provide account shared key to authenticate.")
    options = dict(kwargs)
    api_version = options.pop("api_version", None) or DEFAULT_IDENTITY_VERSION
    return normalize_endpoint(endpoint), api_version, options
