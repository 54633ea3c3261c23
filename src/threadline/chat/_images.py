"""Image calls of a chat thread (api-version 2024-06-05-preview) and the attachment wire shapes.

These calls always send the preview api-version that defines them, whatever
the client's own ``api_version``; so do ``send_message``/``update_message``
when they carry ``attachments`` (older versions do not define the field).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

from threadline._shared.call import Call, parse_nothing, path_segment
from threadline.protocol import wire
from threadline.protocol.versions import IMAGE_CHAT_VERSION

from ._models import ChatAttachment, ChatAttachmentType

__all__ = [
    "IMAGE_CHAT_VERSION",
    "ImageViewType",
    "UploadChatImageResult",
    "attachments_to_wire",
    "delete_image_call",
    "get_image_call",
    "thread_path",
    "upload_image_call",
]

#: The ``imageViewType`` values of ``get_image``.
ImageViewType = str
_VIEWS = ("original", "small")


class UploadChatImageResult:
    """What ``upload_image`` returns: the image's id, to use in a :class:`ChatAttachment`.

    Keyword Args:
        id (str): the server-made image id. Required.
        attachment_type (ChatAttachmentType | str | None): ``image``.
        name (str | None): the file name the server kept.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.id: str = kwargs["id"]
        self.attachment_type: ChatAttachmentType | str | None = kwargs.get("attachment_type")
        self.name: str | None = kwargs.get("name")

    def __repr__(self) -> str:
        return f"UploadChatImageResult(id={self.id!r}, attachment_type={self.attachment_type!r}, name={self.name!r})"


def thread_path(thread_id: str) -> str:
    """The path of a thread, as every thread call uses it."""
    return f"/chat/threads/{path_segment(thread_id)}"


def _image_bytes(image: bytes | bytearray | memoryview | IO[bytes]) -> bytes:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if hasattr(image, "read"):
        data = image.read()
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
    raise TypeError("image must be bytes or a binary file object")


def upload_image_call(
    thread_path: str, image: bytes | bytearray | memoryview | IO[bytes], image_filename: str | None
) -> Call[UploadChatImageResult]:
    """``POST .../images`` with the raw bytes and the ``image-filename`` header.

    Raises:
        ValueError: an empty image.
        TypeError: ``image`` is neither bytes nor a binary file.
    """
    data = _image_bytes(image)
    if not data:
        raise ValueError("image cannot be empty.")

    def parse(body: bytes) -> UploadChatImageResult:
        result = wire.decode(body, wire.UploadImageResult)
        kind = ChatAttachmentType(result.attachment_type) if result.attachment_type in ("image", "file") else (
            result.attachment_type
        )
        return UploadChatImageResult(id=result.id, attachment_type=kind, name=result.name)

    headers = {"image-filename": image_filename} if image_filename else {}
    return Call(
        "POST", f"{thread_path}/images", 201, parse, query={"api-version": IMAGE_CHAT_VERSION},
        headers=headers, body=data, content_type="application/octet-stream",
    )


def get_image_call(thread_path: str, image_id: str, view: ImageViewType = "original") -> Call[bytes]:
    """``GET .../images/{id}/view/{view}``: the image's bytes.

    Raises:
        ValueError: an empty ``image_id`` or an unknown view type.
    """
    if not image_id:
        raise ValueError("image_id cannot be None.")
    if view not in _VIEWS:
        raise ValueError(f"image_view_type must be one of {', '.join(_VIEWS)}")
    call: Call[bytes] = Call(
        "GET", f"{thread_path}/images/{path_segment(image_id)}/view/{view}", 200, bytes,
        query={"api-version": IMAGE_CHAT_VERSION},
    )
    call.headers["Accept"] = "image/*, application/json"
    return call


def delete_image_call(thread_path: str, image_id: str) -> Call[None]:
    """``DELETE .../images/{id}``.

    Raises:
        ValueError: an empty ``image_id``.
    """
    if not image_id:
        raise ValueError("image_id cannot be None.")
    return Call(
        "DELETE", f"{thread_path}/images/{path_segment(image_id)}", 204, parse_nothing,
        query={"api-version": IMAGE_CHAT_VERSION},
    )


def attachments_to_wire(attachments: Sequence[ChatAttachment | UploadChatImageResult | str]) -> list[wire.Attachment]:
    """The ``attachments`` of a send/update: attachments, upload results or bare image ids."""
    out = []
    for item in attachments:
        if isinstance(item, str):
            out.append(wire.Attachment(id=item, attachment_type="image"))
        else:
            kind = item.attachment_type or "image"
            out.append(wire.Attachment(id=item.id, attachment_type=str(getattr(kind, "value", kind)), name=item.name))
    return out
