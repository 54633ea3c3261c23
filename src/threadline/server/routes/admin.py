"""Routes of the admin API (``/admin``, a Threadline extension; see ``docs/admin.md``).

Every route takes an HMAC-signed request (as the identity API) or an Explorer
session (``admin_session.py``); the session routes open and close one.
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from starlette.responses import Response
from starlette.routing import Route

from threadline.identity.hmac import decode_key
from threadline.protocol.errors import ChatServiceError, ErrorKind
from threadline.protocol.times import format_ms, format_precise_ms
from threadline.protocol.wire import CreateIdentityRequest, IssueTokenRequest
from threadline.server import metrics, views
from threadline.server.admin_session import (
    Session,
    authorized_body,
    clear_cookies,
    new_session,
    session_cookies,
    session_of,
)
from threadline.server.answers import json, next_link, no_content
from threadline.server.endpoint import Call, endpoint
from threadline.store.records import ThreadRecord, UserRecord

__all__ = ["ADMIN_VERSION", "ADMIN_VERSIONS", "routes"]

#: The admin API's api-version (required, as on the ACS APIs).
ADMIN_VERSION = "2026-11-28"
ADMIN_VERSIONS: tuple[str, ...] = (ADMIN_VERSION,)
#: The chat api-version whose shapes messages and participants take in admin answers.
_SHAPES = "2025-03-15"

admin = endpoint(ADMIN_VERSIONS)


class SignIn(msgspec.Struct, rename="camel"):
    """The sign-in body: the access key, or a connection string that holds it."""

    access_key: str | None = None
    connection_string: str | None = None


def _time(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def _user(user: UserRecord) -> dict[str, Any]:
    return {"id": user.id, "createdOn": _time(user.created_ms), "deletedOn": _time(user.deleted_ms)}


def _thread(thread: ThreadRecord, members: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": thread.id,
        "topic": thread.topic,
        "createdOn": _time(thread.created_ms),
        "createdBy": views.identifier(thread.created_by),
        "deletedOn": _time(thread.deleted_ms),
        "lastMessageReceivedOn": _time(thread.last_message_ms),
        "metadata": thread.metadata or {},
    }
    if members is not None:
        item["participantCount"] = members
    return item


def _page(call: Call, items: list[Any], cursor: str | None, params: dict[str, Any]) -> Response:
    link = next_link(call, cursor, params, cursor_name="continuationToken")
    return json(call, {"value": items, "nextLink": link})


def _session_body(session: Session) -> dict[str, str]:
    return {"csrfToken": session.csrf_token, "expiresOn": format_ms(session.expires_at * 1000)}


def _key_from(body: SignIn) -> str:
    if body.access_key:
        return body.access_key.strip()
    for part in (body.connection_string or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "accesskey" and value:
            return value.strip()
    raise ChatServiceError(ErrorKind.INVALID, "Give accessKey, or a connectionString holding accesskey=.",
                           target="accessKey")


@admin
async def admin_sign_in(call: Call) -> Response:
    if not (call.header("content-type") or "").lower().startswith("application/json"):
        raise ChatServiceError(ErrorKind.INVALID, "The body must be application/json.", target="Content-Type")
    body = call.decode(await call.body(), SignIn)
    try:
        given = decode_key(_key_from(body))
    except ValueError:
        raise ChatServiceError(ErrorKind.UNAUTHORIZED, "The access key is not valid.") from None
    key = call.state.settings.key_bytes
    if not hmac.compare_digest(given, key):
        raise ChatServiceError(ErrorKind.UNAUTHORIZED, "The access key is not valid.")
    value, session = new_session(key)
    response = json(call, _session_body(session))
    for cookie in session_cookies(value, secure=call.request.url.scheme == "https"):
        response.headers.append("set-cookie", cookie)
    return response


@admin
async def admin_session(call: Call) -> Response:
    session = session_of(call)
    if session is None:
        raise ChatServiceError(ErrorKind.UNAUTHORIZED, "Not signed in.")
    return json(call, _session_body(session))


@admin
async def admin_sign_out(call: Call) -> Response:
    await authorized_body(call)
    response = no_content(call)
    for cookie in clear_cookies(secure=call.request.url.scheme == "https"):
        response.headers.append("set-cookie", cookie)
    return response


@admin
async def admin_list_identities(call: Call) -> Response:
    await authorized_body(call)
    size, search = call.query_int("maxPageSize"), call.query("search")
    page = await call.state.admin.users(search=search, size=size, cursor=call.query("continuationToken"))
    return _page(call, [_user(u) for u in page.items], page.cursor, {"maxPageSize": size, "search": search})


@admin
async def admin_create_identity(call: Call) -> Response:
    body = await authorized_body(call)
    request = call.decode(body, CreateIdentityRequest, empty=CreateIdentityRequest())
    user, issued = await call.state.identity.create(request.create_token_with_scopes, request.expires_in_minutes)
    result: dict[str, Any] = {"identity": _user(user)}
    if issued is not None:
        result["accessToken"] = {"token": issued.token, "expiresOn": format_precise_ms(issued.expires_at * 1000)}
    return json(call, result, 201)


@admin
async def admin_get_identity(call: Call) -> Response:
    await authorized_body(call)
    return json(call, _user(await call.state.admin.user(call.path("user_id"))))


@admin
async def admin_issue_token(call: Call) -> Response:
    body = await authorized_body(call)
    request = call.decode(body, IssueTokenRequest)
    issued = await call.state.identity.issue(call.path("user_id"), request.scopes, request.expires_in_minutes)
    return json(call, {"token": issued.token, "expiresOn": format_precise_ms(issued.expires_at * 1000)})


@admin
async def admin_list_threads(call: Call) -> Response:
    await authorized_body(call)
    size, topic, member = call.query_int("maxPageSize"), call.query("topic"), call.query("member")
    page = await call.state.admin.threads(
        topic=topic, member=member, size=size, cursor=call.query("continuationToken")
    )
    items = [_thread(thread, members) for thread, members in page.items]
    return _page(call, items, page.cursor, {"maxPageSize": size, "topic": topic, "member": member})


@admin
async def admin_get_thread(call: Call) -> Response:
    await authorized_body(call)
    detail = await call.state.admin.thread(call.path("thread_id"))
    return json(call, {
        "thread": _thread(detail.thread, detail.participant_count),
        "participants": [views.participant(p, _SHAPES) for p in detail.participants],
        "readReceipts": [views.receipt(r) for r in detail.receipts],
    })


@admin
async def admin_list_messages(call: Call) -> Response:
    await authorized_body(call)
    size = call.query_int("maxPageSize")
    page = await call.state.admin.messages(
        call.path("thread_id"), size=size, cursor=call.query("continuationToken")
    )
    return _page(call, [views.message(m, _SHAPES) for m in page.items], page.cursor, {"maxPageSize": size})


@admin
async def admin_list_participants(call: Call) -> Response:
    await authorized_body(call)
    size = call.query_int("maxPageSize")
    page = await call.state.admin.participants(
        call.path("thread_id"), size=size, cursor=call.query("continuationToken")
    )
    return _page(call, [views.participant(p, _SHAPES) for p in page.items], page.cursor, {"maxPageSize": size})


@admin
async def admin_list_read_receipts(call: Call) -> Response:
    await authorized_body(call)
    size = call.query_int("maxPageSize")
    page = await call.state.admin.receipts(call.path("thread_id"), size=size, cursor=call.query("continuationToken"))
    return _page(call, [views.receipt(r) for r in page.items], page.cursor, {"maxPageSize": size})


def key_metrics() -> dict[str, float]:
    """This process's headline figures from the ``/metrics`` registry."""
    totals = {"requests": 0.0, "throttledRequests": 0.0, "databaseErrors": 0.0}
    names = {"threadline_requests_total": "requests", "threadline_throttled_requests_total": "throttledRequests",
             "threadline_database_errors_total": "databaseErrors"}
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name in names:
                totals[names[sample.name]] += sample.value
    totals["realtimeConnections"] = metrics.REGISTRY.get_sample_value("threadline_realtime_connections") or 0.0
    totals["eventHubConnected"] = metrics.REGISTRY.get_sample_value("threadline_event_hub_connected") or 0.0
    return totals


@admin
async def admin_status(call: Call) -> Response:
    await authorized_body(call)
    return json(call, await call.state.admin.status(key_metrics()))


_IDENTITY = "/admin/identities/{user_id}"
_THREAD = "/admin/threads/{thread_id}"

routes = [
    Route("/admin/session", admin_sign_in, methods=["POST"]),
    Route("/admin/session", admin_session, methods=["GET"]),
    Route("/admin/session", admin_sign_out, methods=["DELETE"]),
    Route("/admin/identities", admin_list_identities, methods=["GET"]),
    Route("/admin/identities", admin_create_identity, methods=["POST"]),
    Route(_IDENTITY, admin_get_identity, methods=["GET"]),
    Route(_IDENTITY + "/:issueAccessToken", admin_issue_token, methods=["POST"]),
    Route("/admin/threads", admin_list_threads, methods=["GET"]),
    Route(_THREAD, admin_get_thread, methods=["GET"]),
    Route(_THREAD + "/messages", admin_list_messages, methods=["GET"]),
    Route(_THREAD + "/participants", admin_list_participants, methods=["GET"]),
    Route(_THREAD + "/readReceipts", admin_list_read_receipts, methods=["GET"]),
    Route("/admin/status", admin_status, methods=["GET"]),
]
