"""Routes of the ACS Chat API (all stable api-versions)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from threadline.protocol.versions import CHAT_VERSIONS, DEFAULT_CHAT_VERSION, PREVIEW_CHAT_VERSIONS
from threadline.protocol.wire import (
    AddParticipantsRequest,
    AddParticipantsResult,
    Attachment,
    Collection,
    CreateThreadRequest,
    CreateThreadResult,
    Identifier,
    ReadReceiptRequest,
    SendMessageRequest,
    SendMessageResult,
    TypingRequest,
    UpdateMessageRequest,
    UpdateThreadRequest,
)
from threadline.server import views
from threadline.server.answers import json, next_link, no_content
from threadline.server.auth import bearer_actor
from threadline.server.endpoint import Call, endpoint

__all__ = ["routes"]

chat = endpoint(CHAT_VERSIONS + PREVIEW_CHAT_VERSIONS)
REPEATABILITY = "repeatability-request-id"


@chat
async def create_thread(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(CreateThreadRequest)
    created = await call.state.threads.create(
        actor, body.topic, body.participants, metadata=body.metadata, retention_policy=body.retention_policy,
        repeatability_id=call.header(REPEATABILITY),
    )
    result = CreateThreadResult(
        chat_thread=views.thread_properties(created.thread, call.api_version),
        invalid_participants=created.invalid or None,
    )
    call.headers["Location"] = f"{call.url_path}/{created.thread.id}"
    return json(call, result, 201)


@chat
async def list_threads(call: Call) -> Response:
    actor = await bearer_actor(call)
    size, start = call.query_int("maxPageSize"), call.query("startTime")
    cursor = call.query("syncState")
    page = await call.state.threads.list_threads(actor, page_size=size, start_time=start, cursor=cursor)
    link = next_link(call, page.cursor, {"maxPageSize": size, "startTime": start})
    return json(call, Collection(value=[views.thread_item(t) for t in page.items], next_link=link))


@chat
async def get_thread(call: Call) -> Response:
    actor = await bearer_actor(call)
    thread = await call.state.threads.get(actor, call.path("thread_id"))
    return json(call, views.thread_properties(thread, call.api_version))


@chat
async def update_thread(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(UpdateThreadRequest, empty=UpdateThreadRequest())
    await call.state.threads.update(
        actor, call.path("thread_id"), body.topic, body.metadata, retention_policy=body.retention_policy
    )
    return no_content(call)


@chat
async def delete_thread(call: Call) -> Response:
    actor = await bearer_actor(call)
    await call.state.threads.delete(actor, call.path("thread_id"))
    return no_content(call)


@chat
async def send_message(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(SendMessageRequest)
    message_id = await call.state.messages.send(
        actor, call.path("thread_id"), body.content, kind=body.type,
        sender_display_name=body.sender_display_name, metadata=body.metadata,
        repeatability_id=call.header(REPEATABILITY), attachments=_attachments(call, body.attachments),
    )
    call.headers["Location"] = f"{call.url_path}/{message_id}"
    return json(call, SendMessageResult(id=message_id), 201)


@chat
async def list_messages(call: Call) -> Response:
    actor = await bearer_actor(call)
    size, start = call.query_int("maxPageSize"), call.query("startTime")
    page = await call.state.messages.list_messages(
        actor, call.path("thread_id"), page_size=size, start_time=start, cursor=call.query("syncState")
    )
    link = next_link(call, page.cursor, {"maxPageSize": size, "startTime": start})
    base = _base_url(call)
    items = [views.message(m, call.api_version, base) for m in page.items]
    return json(call, Collection(value=items, next_link=link))


@chat
async def get_message(call: Call) -> Response:
    actor = await bearer_actor(call)
    message = await call.state.messages.get(actor, call.path("thread_id"), call.path("message_id"))
    return json(call, views.message(message, call.api_version, _base_url(call)))


@chat
async def update_message(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(UpdateMessageRequest, empty=UpdateMessageRequest())
    await call.state.messages.update(
        actor, call.path("thread_id"), call.path("message_id"), content=body.content, metadata=body.metadata,
        attachments=_attachments(call, body.attachments),
    )
    return no_content(call)


@chat
async def delete_message(call: Call) -> Response:
    actor = await bearer_actor(call)
    await call.state.messages.delete(actor, call.path("thread_id"), call.path("message_id"))
    return no_content(call)


@chat
async def list_participants(call: Call) -> Response:
    actor = await bearer_actor(call)
    size, skip = call.query_int("maxPageSize"), call.query_int("skip")
    page = await call.state.threads.list_participants(actor, call.path("thread_id"), page_size=size, skip=skip)
    link = next_link(call, page.cursor, {"maxPageSize": size}, cursor_name="skip")
    items = [views.participant(p, call.api_version) for p in page.items]
    return json(call, Collection(value=items, next_link=link))


@chat
async def add_participants(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(AddParticipantsRequest)
    errors = await call.state.threads.add_participants(
        actor, call.path("thread_id"), body.participants, repeatability_id=call.header(REPEATABILITY)
    )
    return json(call, AddParticipantsResult(invalid_participants=errors or None), 201)


@chat
async def remove_participant(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(Identifier)
    await call.state.threads.remove_participant(actor, call.path("thread_id"), body)
    return no_content(call)


@chat
async def send_read_receipt(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(ReadReceiptRequest)
    await call.state.messages.send_read_receipt(
        actor, call.path("thread_id"), body.chat_message_id, repeatability_id=call.header(REPEATABILITY)
    )
    return no_content(call, 200)


@chat
async def list_read_receipts(call: Call) -> Response:
    actor = await bearer_actor(call)
    size, skip = call.query_int("maxPageSize"), call.query_int("skip")
    page = await call.state.messages.list_read_receipts(
        actor, call.path("thread_id"), page_size=size, skip=skip
    )
    link = next_link(call, page.cursor, {"maxPageSize": size}, cursor_name="skip")
    return json(call, Collection(value=[views.receipt(r) for r in page.items], next_link=link))


@chat
async def send_typing(call: Call) -> Response:
    actor = await bearer_actor(call)
    body = await call.model(TypingRequest, empty=TypingRequest())
    await call.state.messages.typing(actor, call.path("thread_id"), body.sender_display_name)
    return no_content(call, 200)


def _attachments(call: Call, attachments: list[Attachment] | None) -> list[Attachment] | None:
    """``attachments`` on send/update exist only in the image preview; older versions never had them."""
    return attachments if call.api_version in PREVIEW_CHAT_VERSIONS else None


def _base_url(call: Call) -> str:
    """The server's origin (and mount path) as the client reached it, for attachment URLs."""
    return str(call.request.base_url).rstrip("/")


_THREAD = "/chat/threads/{thread_id}"
_MESSAGE = _THREAD + "/messages/{message_id}"

# Starlette tries routes in order: the busiest (send, then list messages) first. Paths are anchored,
# so the order changes nothing else (a path's routes keep their order, which picks a 405's Allow).
routes = [
    Route(_THREAD + "/messages", send_message, methods=["POST"]),
    Route(_THREAD + "/messages", list_messages, methods=["GET"]),
    Route("/chat/threads", create_thread, methods=["POST"]),
    Route("/chat/threads", list_threads, methods=["GET"]),
    Route(_THREAD, get_thread, methods=["GET"]),
    Route(_THREAD, update_thread, methods=["PATCH"]),
    Route(_THREAD, delete_thread, methods=["DELETE"]),
    Route(_MESSAGE, get_message, methods=["GET"]),
    Route(_MESSAGE, update_message, methods=["PATCH"]),
    Route(_MESSAGE, delete_message, methods=["DELETE"]),
    Route(_THREAD + "/participants", list_participants, methods=["GET"]),
    Route(_THREAD + "/participants/:add", add_participants, methods=["POST"]),
    Route(_THREAD + "/participants/:remove", remove_participant, methods=["POST"]),
    Route(_THREAD + "/readReceipts", send_read_receipt, methods=["POST"]),
    Route(_THREAD + "/readReceipts", list_read_receipts, methods=["GET"]),
    Route(_THREAD + "/typing", send_typing, methods=["POST"]),
]

assert DEFAULT_CHAT_VERSION in CHAT_VERSIONS
