"""Images of a thread (2024-06-05-preview): upload, read, delete, and attaching them to messages."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Sequence

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.inputs import invalid
from threadline.protocol.times import now_ms
from threadline.protocol.wire import Attachment
from threadline.server.limits import Limits
from threadline.store.base import Store
from threadline.store.blobs import AttachmentUnavailable, ImageLimitReached
from threadline.store.records import ImageRecord

from .access import Access
from .actor import Actor
from .common import require_member

__all__ = [
    "VIEW_TYPES",
    "ImageService",
    "attachment_error",
    "image_too_large",
    "require_own_images",
    "sniff_image_type",
    "validate_attachments",
]

#: ``imageViewType`` values; both serve the uploaded bytes (no resizing).
VIEW_TYPES = ("original", "small")
_IMAGE_ID = re.compile(r"^[0-9a-z-]{1,64}$")
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
               "image/heic": "heic"}
_NAME_CHARS = 255


def sniff_image_type(data: bytes) -> str | None:
    """The image type named by the data's magic bytes (jpeg, png, gif, webp, heic), or None.

    The file name and the request's Content-Type are never consulted.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if len(data) >= 12 and data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    return None


def clean_file_name(name: str | None, content_type: str) -> str:
    """A display name from the ``image-filename`` header: no folders, no control characters, bounded."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" and ch not in '"<>')
    text = text.strip().strip(".")[:_NAME_CHARS]
    return text or f"image.{_EXTENSIONS[content_type]}"


def validate_attachments(attachments: Sequence[Attachment] | None, limits: Limits) -> list[str] | None:
    """The image ids of a message's ``attachments``, checked; None when absent.

    Raises:
        ChatServiceError: 400 for a type other than ``image``, an empty or repeated id, or too many.
    """
    if attachments is None:
        return None
    if len(attachments) > limits.attachments_per_message:
        raise invalid(f"A message may have at most {limits.attachments_per_message} attachments.", "attachments")
    ids: list[str] = []
    for n, item in enumerate(attachments):
        if item.attachment_type != "image":
            raise invalid("Only attachments of type image (uploaded to the thread) are supported.",
                          f"attachments[{n}].attachmentType")
        if not _IMAGE_ID.match(item.id) or item.id in ids:
            raise invalid("The attachment id is not a distinct image id of this thread.", f"attachments[{n}].id")
        ids.append(item.id)
    return ids


def _not_found() -> ChatServiceError:
    return ChatServiceError(ErrorKind.NOT_FOUND, "Image not found.", target="imageId")


class ImageService:
    """Keeps the images of threads; only members may upload or read them.

    Args:
        store: the database (rows) and its blob storage (bytes).
        limits: the size limit of one image.
        access: the access cache in front of the store (None: read the store every time).
    """

    def __init__(self, store: Store, limits: Limits, access: Access | None = None) -> None:
        self._store = store
        self._limits = limits
        self._access = access or Access(store)

    async def may_upload(self, actor: Actor, thread_id: str) -> None:
        """Check membership before an upload's body is read, so a stranger cannot make the server buffer it.

        Raises:
            ChatServiceError: 403 not a member; 404 unknown or deleted thread.
        """
        await require_member(self._access, actor, thread_id)

    async def upload(self, actor: Actor, thread_id: str, data: bytes, file_name: str | None) -> ImageRecord:
        """Keep an image the actor uploads to a thread.

        Args:
            actor: who uploads (a member of the thread).
            thread_id: the thread.
            data: the image's bytes; their type is sniffed, never taken from the name.
            file_name: the ``image-filename`` header, kept as the display name.

        Returns:
            The stored image.

        Raises:
            ChatServiceError: 400 empty or the thread's image limit reached, 413 too large,
                415 not jpeg/png/gif/webp/heic, 403, 404.
        """
        await require_member(self._access, actor, thread_id)
        if not data:
            raise invalid("The image is empty.", "chatImageFile")
        if len(data) > self._limits.image_bytes:
            raise image_too_large(self._limits)
        content_type = sniff_image_type(data)
        if content_type is None:
            raise ChatServiceError(
                ErrorKind.UNSUPPORTED_MEDIA, "The image must be a JPEG, PNG, GIF, WebP or HEIC file.",
                target="chatImageFile",
            )
        image = ImageRecord(
            thread_id=thread_id, id=f"0-tl-d0-{secrets.token_hex(16)}", uploader_id=actor.user_id,
            name=clean_file_name(file_name, content_type), content_type=content_type, size=len(data),
            created_ms=now_ms(),
        )
        try:
            added = await self._store.add_image(image, data, limit=self._limits.images_per_thread)
        except ImageLimitReached:
            raise invalid(f"A thread may hold at most {self._limits.images_per_thread} images.",
                          "chatImageFile") from None
        if not added:
            raise ChatServiceError(ErrorKind.NOT_FOUND, "Thread not found.", target="chatThreadId")
        return image

    async def get(self, actor: Actor, thread_id: str, image_id: str, view: str) -> tuple[ImageRecord, bytes]:
        """An image the actor may see, with its bytes.

        An image attached to a message is visible to whoever may see the message
        (share-history applies); an image not yet attached, to every member.

        Raises:
            ChatServiceError: 400 unknown view type; 403 not a member; 404 unknown or hidden image.
        """
        if view not in VIEW_TYPES:
            raise invalid("imageViewType must be original or small.", "imageViewType")
        image = await self.visible(actor, thread_id, image_id)
        data = await self._store.read_image(image)
        if data is None:
            raise _not_found()
        return image, data

    async def visible(self, actor: Actor, thread_id: str, image_id: str) -> ImageRecord:
        """The image's record if the actor may see it.

        Raises:
            ChatServiceError: 403 not a member; 404 unknown image, or attached to a message
                outside the actor's shared history.
        """
        member = await require_member(self._access, actor, thread_id)
        image = await self._store.get_image(thread_id, image_id) if _IMAGE_ID.match(image_id) else None
        if image is None:
            raise _not_found()
        if image.message_id is not None and image.uploader_id != actor.user_id:
            message = await self._store.get_message(thread_id, image.message_id)
            if message is None or message.deleted_ms is not None or message.created_ms < member.share_history_ms:
                raise _not_found()
        return image

    async def delete(self, actor: Actor, thread_id: str, image_id: str) -> None:
        """Delete an image the actor uploaded; deleting an unknown image succeeds quietly.

        Raises:
            ChatServiceError: 403 not a member or not the uploader; 404 unknown thread.
        """
        await require_member(self._access, actor, thread_id)
        image = await self._store.get_image(thread_id, image_id) if _IMAGE_ID.match(image_id) else None
        if image is None:
            return
        if image.uploader_id != actor.user_id:
            raise ChatServiceError(ErrorKind.FORBIDDEN, "Only the uploader may delete an image.")
        await self._store.delete_image(thread_id, image_id)


async def require_own_images(store: Store, actor: Actor, thread_id: str, image_ids: Sequence[str]) -> None:
    """Check that the actor uploaded each image to the thread (before attaching them).

    Raises:
        ChatServiceError: 400 for an image that is not the actor's image of the thread.
    """
    for n, image_id in enumerate(image_ids):
        image = await store.get_image(thread_id, image_id)
        if image is None or image.uploader_id != actor.user_id:
            raise invalid("The attachment is not an image you uploaded to this thread.", f"attachments[{n}].id")


def attachment_error(exc: AttachmentUnavailable, image_ids: Sequence[str]) -> ChatServiceError:
    """The 400 of an attachment the store could not link (deleted, or taken by another message)."""
    name = str(exc)
    n = image_ids.index(name) if name in image_ids else 0
    return invalid("The image is not in this thread or is attached to another message.", f"attachments[{n}].id")


def image_too_large(limits: Limits) -> ChatServiceError:
    """The 413 of an image over ``limits.image_bytes``."""
    return ChatServiceError(
        ErrorKind.TOO_LARGE, f"The image exceeds {limits.image_bytes} bytes.", target="chatImageFile"
    )
