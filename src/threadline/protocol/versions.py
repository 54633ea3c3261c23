"""API versions Threadline accepts, and the ones its SDK sends."""

from __future__ import annotations

__all__ = [
    "CHAT_VERSIONS",
    "DEFAULT_CHAT_VERSION",
    "DEFAULT_IDENTITY_VERSION",
    "IDENTITY_VERSIONS",
    "IMAGE_CHAT_VERSION",
    "PREVIEW_CHAT_VERSIONS",
    "supported_header",
]

#: Chat api-versions with a stable spec; older SDKs pin the older ones.
CHAT_VERSIONS: tuple[str, ...] = ("2021-09-07", "2023-11-07", "2024-03-07", "2025-03-15")
#: The preview that defines image upload/get/delete and message ``attachments``; the
#: JS SDK 1.6.0-beta.7 sends it on every call, ours only on the image calls.
IMAGE_CHAT_VERSION = "2024-06-05-preview"
#: Preview chat api-versions, accepted for exactly the operations they define.
PREVIEW_CHAT_VERSIONS: tuple[str, ...] = (IMAGE_CHAT_VERSION,)
#: Identity api-versions the official SDKs have sent.
IDENTITY_VERSIONS: tuple[str, ...] = (
    "2021-03-07",
    "2022-06-01",
    "2022-10-01",
    "2023-10-01",
    "2026-09-23",
)
#: What our SDK sends unless ``api_version=`` says otherwise: the newest stable version, which the
#: JS SDK 1.6.0 sends too (``azure-communication-chat`` 1.3.0 sends 2024-03-07).
DEFAULT_CHAT_VERSION = "2025-03-15"
#: What ``azure-communication-identity`` 1.5.0 sends.
DEFAULT_IDENTITY_VERSION = "2023-10-01"


def supported_header(versions: tuple[str, ...]) -> str:
    """Format versions as the ``api-supported-versions`` response header does."""
    return ", ".join(versions)
