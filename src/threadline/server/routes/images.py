"""Routes of the image operations (api-version 2024-06-05-preview only)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import Response
from starlette.routing import Route

from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.versions import PREVIEW_CHAT_VERSIONS
from threadline.protocol.wire import UploadImageResult
from threadline.server.answers import json, no_content
from threadline.server.auth import bearer_actor
from threadline.server.endpoint import Call, endpoint
from threadline.server.services.images import image_too_large

__all__ = ["routes"]

images = endpoint(PREVIEW_CHAT_VERSIONS)


async def _image_body(call: Call) -> bytes:
    """The raw image, refused with 413 past the image limit (before reading it all when declared)."""
    limit: int = call.state.settings.limits.image_bytes
    declared = call.header("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise image_too_large(call.state.settings.limits)
    chunks, size = [], 0
    async for chunk in call.request.stream():
        size += len(chunk)
        if size > limit:
            raise image_too_large(call.state.settings.limits)
        chunks.append(chunk)
    return b"".join(chunks)


def _disposition(name: str) -> str:
    """``inline`` with an ASCII fallback name and the exact UTF-8 name (RFC 6266)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;%' else "_" for ch in name)
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@images
async def upload_image(call: Call) -> Response:
    actor = await bearer_actor(call)
    await call.state.images.may_upload(actor, call.path("thread_id"))
    data = await _image_body(call)
    name = call.header("image-filename")
    if name is not None and "\x00" in name:
        raise ChatServiceError(ErrorKind.INVALID, "image-filename must not contain NUL.", target="image-filename")
    image = await call.state.images.upload(actor, call.path("thread_id"), data, name)
    call.headers["Location"] = f"{call.url_path}/{image.id}"
    return json(call, UploadImageResult(id=image.id, attachment_type="image", name=image.name), 201)


@images
async def get_image(call: Call) -> Response:
    actor = await bearer_actor(call)
    image, data = await call.state.images.get(
        actor, call.path("thread_id"), call.path("image_id"), call.path("view_type")
    )
    headers = {
        **call.headers,
        "Content-Disposition": _disposition(image.name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    return Response(data, status_code=200, media_type=image.content_type, headers=headers)


@images
async def delete_image(call: Call) -> Response:
    actor = await bearer_actor(call)
    await call.state.images.delete(actor, call.path("thread_id"), call.path("image_id"))
    return no_content(call)


_IMAGES = "/chat/threads/{thread_id}/images"

routes = [
    Route(_IMAGES, upload_image, methods=["POST"]),
    Route(_IMAGES + "/{image_id}/view/{view_type}", get_image, methods=["GET"]),
    Route(_IMAGES + "/{image_id}", delete_image, methods=["DELETE"]),
]
