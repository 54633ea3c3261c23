"""Request building: every operation's method, URL, query, headers and body, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from azure.core.pipeline import PipelineContext, PipelineRequest

from threadline._shared.call import rebase_link, with_api_version
from threadline._shared.endpoint import is_loopback_url, normalize_endpoint, parse_connection_string
from threadline.chat import (
    ChatError,
    ChatMessageType,
    ChatParticipant,
    ChatThreadItem,
    CommunicationUserIdentifier,
    SendChatMessageResult,
)
from threadline.chat._requests import ChatRequests, ChatThreadRequests, message_type
from threadline.identity import CommunicationTokenScope
from threadline.identity._policy import HMACCredentialPolicy
from threadline.identity._requests import IdentityRequests
from threadline.identity.hmac import EMPTY_CONTENT_HASH, content_hash, decode_key, parse_authorization, verify

EP = "https://acs.example.com"
TID = "19:abc@thread.v2"
USER = CommunicationUserIdentifier("8:acs:r_u1")
THREAD = ChatThreadRequests(TID, "2024-03-07")


def body_of(call: object) -> object:
    return json.loads(call.body) if call.body is not None else None  # type: ignore[attr-defined]


def test_create_thread_request() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    call = ChatRequests("2024-03-07").create_chat_thread(
        "topic", [ChatParticipant(identifier=USER, display_name="U", share_history_time=when)], "tok-1"
    )
    request = call.request(EP)
    assert (request.method, request.url) == ("POST", "https://acs.example.com/chat/threads?api-version=2024-03-07")
    assert request.headers["repeatability-request-id"] == "tok-1"
    assert request.headers["Content-Type"] == "application/json"
    assert call.success == 201
    assert body_of(call) == {
        "topic": "topic",
        "participants": [{
            "communicationIdentifier": {"rawId": "8:acs:r_u1", "communicationUser": {"id": "8:acs:r_u1"}},
            "displayName": "U",
            "shareHistoryTime": "2024-01-02T03:04:05.678901Z",
        }],
    }


def test_create_thread_without_token_sends_a_fresh_uuid_and_empty_participants() -> None:
    a = ChatRequests("v").create_chat_thread("t", None, None)
    b = ChatRequests("v").create_chat_thread("t", None, None)
    ids = {a.headers["repeatability-request-id"], b.headers["repeatability-request-id"]}
    assert len(ids) == 2 and all(len(i) == 36 for i in ids)
    assert body_of(a) == {"topic": "t", "participants": []}


def test_the_same_request_object_keeps_its_repeatability_id() -> None:
    call = THREAD.send_message("hi", None, None, None)
    request = call.request(EP)
    first = request.headers["repeatability-request-id"]
    assert request.headers["repeatability-request-id"] == first  # retries resend this object
    assert call.request(EP).headers["repeatability-request-id"] != first  # a new call gets a new id


def test_non_utc_and_naive_datetimes_are_sent_as_utc() -> None:
    east = timezone(timedelta(hours=2))
    pager = ChatRequests("v").list_chat_threads(5, datetime(2024, 1, 1, 2, 0, tzinfo=east))
    assert dict(pager.first.query) == {
        "api-version": "v", "maxPageSize": "5", "startTime": "2024-01-01T00:00:00.000000Z"
    }
    naive = THREAD.list_messages(None, datetime(2024, 1, 1)).first
    assert naive.query["startTime"] == "2024-01-01T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("call", "method", "path", "query", "body", "success", "ctype"),
    [
        (THREAD.get_properties(), "GET", "", {}, None, 200, None),
        (THREAD.update_topic("new"), "PATCH", "", {}, {"topic": "new"}, 204, "application/merge-patch+json"),
        (THREAD.update_topic(None), "PATCH", "", {}, {}, 204, "application/merge-patch+json"),
        (THREAD.send_message("hi", "html", "A", {"k": "v"}), "POST", "/messages", {},
         {"content": "hi", "senderDisplayName": "A", "type": "html", "metadata": {"k": "v"}}, 201, "application/json"),
        (THREAD.send_message("hi", None, None, None), "POST", "/messages", {}, {"content": "hi", "type": "text"},
         201, "application/json"),
        (THREAD.get_message("m1"), "GET", "/messages/m1", {}, None, 200, None),
        (THREAD.update_message("m1", "c", {"k": "v"}), "PATCH", "/messages/m1", {},
         {"content": "c", "metadata": {"k": "v"}}, 204, "application/merge-patch+json"),
        (THREAD.update_message("m1", None, None), "PATCH", "/messages/m1", {}, {}, 204,
         "application/merge-patch+json"),
        (THREAD.delete_message("m1"), "DELETE", "/messages/m1", {}, None, 204, None),
        (THREAD.list_messages(2, None).first, "GET", "/messages", {"maxPageSize": "2"}, None, 200, None),
        (THREAD.list_participants(3, 1).first, "GET", "/participants", {"maxPageSize": "3", "skip": "1"}, None,
         200, None),
        (THREAD.remove_participant(USER), "POST", "/participants/:remove", {},
         {"rawId": "8:acs:r_u1", "communicationUser": {"id": "8:acs:r_u1"}}, 204, "application/json"),
        (THREAD.send_read_receipt("m1"), "POST", "/readReceipts", {}, {"chatMessageId": "m1"}, 200,
         "application/json"),
        (THREAD.list_read_receipts(None, 2).first, "GET", "/readReceipts", {"skip": "2"}, None, 200, None),
        (THREAD.send_typing_notification(None), "POST", "/typing", {}, {}, 200, "application/json"),
        (THREAD.send_typing_notification("A"), "POST", "/typing", {}, {"senderDisplayName": "A"}, 200,
         "application/json"),
    ],
)
def test_thread_requests(call, method, path, query, body, success, ctype) -> None:  # type: ignore[no-untyped-def]
    request = call.request(EP + "/prefix/")
    assert request.method == method
    base, _, qs = request.url.partition("?")
    assert base == "https://acs.example.com/prefix/chat/threads/19:abc@thread.v2" + path
    assert dict(p.split("=", 1) for p in qs.split("&")) == {"api-version": "2024-03-07", **query}
    assert body_of(call) == body
    assert call.success == success
    assert request.headers.get("Content-Type") == ctype
    assert request.headers["Accept"] == "application/json"
    assert ("repeatability-request-id" in request.headers) == (method == "POST")


def test_add_participants_request_and_empty_list() -> None:
    assert THREAD.add_participants([]) is None
    call = THREAD.add_participants([ChatParticipant(identifier=USER)])
    assert call is not None
    assert call.url.endswith("/participants/:add") and call.success == 201
    assert body_of(call) == {"participants": [{"communicationIdentifier": {"rawId": "8:acs:r_u1",
                                                                         "communicationUser": {"id": "8:acs:r_u1"}}}]}
    errors = call.parse(msgspec.json.encode({"invalidParticipants": [
        {"code": "403", "message": "Permissions check failed", "target": "8:acs:r_u1"},
        {"code": "404", "message": "Not found", "target": "8:acs:nobody"},
    ]}))
    assert [(p.identifier.raw_id if p else None, e.code, e.target) for p, e in errors] == [
        ("8:acs:r_u1", "403", "8:acs:r_u1"), (None, "404", "8:acs:nobody")
    ]
    assert call.parse(b"") == [] and call.parse(b"{}") == []


def test_per_call_api_version_and_path_encoding() -> None:
    call = THREAD.get_message("a b/c", api_version="2023-11-07")
    assert call.request(EP).url == (
        "https://acs.example.com/chat/threads/19:abc@thread.v2/messages/a%20b%2Fc?api-version=2023-11-07"
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ChatRequests("v").create_chat_thread("", None, None), "topic cannot be None."),
        (lambda: ChatRequests("v").delete_chat_thread(""), "thread_id cannot be None."),
        (lambda: ChatThreadRequests("", "v"), "thread_id can not be None or empty"),
        (lambda: THREAD.send_message("", None, None, None), "content cannot be None."),
        (lambda: THREAD.get_message(""), "message_id cannot be None."),
        (lambda: THREAD.update_message("", "x", None), "message_id cannot be None."),
        (lambda: THREAD.delete_message(""), "message_id cannot be None."),
        (lambda: THREAD.send_read_receipt(""), "message_id cannot be None."),
        (lambda: THREAD.remove_participant(None), "identifier cannot be None."),  # type: ignore[arg-type]
        (lambda: THREAD.send_message("x", "markdown", None, None), "is not acceptable"),
        (lambda: THREAD.send_message("x", ChatMessageType.TOPIC_UPDATED, None, None), "can be only 'text' or 'html'"),
    ],
)
def test_invalid_arguments_raise_value_error(build, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        build()


def test_non_identifier_participants_raise_type_error() -> None:
    with pytest.raises(TypeError, match="Unsupported identifier type"):
        ChatRequests("v").create_chat_thread("t", [ChatParticipant(identifier="8:acs:x")], None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("given", "expected"), [(None, "text"), ("text", "text"), ("html", "html"),
                                                 ("HTML", "html"), ("Text", "text"), (ChatMessageType.HTML, "html")])
def test_message_types(given: str | None, expected: str) -> None:
    assert message_type(given).value == expected


def test_next_links_are_rebased_and_get_the_pager_version() -> None:
    pager = THREAD.list_messages(2, None, api_version="2023-11-07")
    same = pager.call(None)
    assert same is pager.first
    relative = pager.call("/chat/threads/x/messages?syncState=a%2Bb+c&maxPageSize=2&api-version=2021-09-07")
    assert relative.query == {}
    assert relative.request(EP + "/p").url == (
        "https://acs.example.com/p/chat/threads/x/messages?syncState=a%2Bb+c&maxPageSize=2&api-version=2023-11-07"
    )
    absolute = pager.call("http://evil.example:81/chat/threads/x/messages?maxPageSize=2")
    assert absolute.request(EP).url == "https://acs.example.com/chat/threads/x/messages?maxPageSize=2&api-version=2023-11-07"
    assert rebase_link(EP, "chat/threads") == EP + "/chat/threads"
    assert with_api_version("/a?b=1&api-version=x&c=", "y") == "/a?b=1&c=&api-version=y"


def test_page_parsing() -> None:
    page = ChatRequests("v").list_chat_threads(None, None).first.parse(msgspec.json.encode({
        "value": [{"id": "19:a@thread.v2", "topic": "t", "lastMessageReceivedOn": "2024-05-06T07:08:09Z"},
                  {"id": "19:b@thread.v2", "topic": "u", "deletedOn": "2024-05-06T07:08:09.1234567+02:00"}],
        "nextLink": "/chat/threads?continuationToken=2",
    }))
    assert page.next_link == "/chat/threads?continuationToken=2"
    first, second = page.items
    assert isinstance(first, ChatThreadItem)
    assert first.last_message_received_on == datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert second.deleted_on == datetime(2024, 5, 6, 5, 8, 9, 123456, tzinfo=UTC)
    assert first.as_dict() == {"id": "19:a@thread.v2", "topic": "t",
                               "last_message_received_on": "2024-05-06T07:08:09.000000Z"}
    assert first.serialize() == {"id": "19:a@thread.v2", "topic": "t"}


def test_message_parsing_keeps_unknown_types_as_strings() -> None:
    message = THREAD.get_message("m").parse(msgspec.json.encode({
        "id": "1", "type": "somethingNew", "sequenceId": "3", "version": "1", "createdOn": "2024-05-06T07:08:09Z",
        "content": {"message": "hi", "attachments": [{"id": "a", "attachmentType": "file", "name": "f"}]},
        "senderCommunicationIdentifier": {"rawId": "8:acs:r_u1", "communicationUser": {"id": "8:acs:r_u1"}},
    }))
    assert message.type == "somethingNew" and not isinstance(message.type, ChatMessageType)
    assert message.content is not None and message.content.attachments is not None
    assert message.content.attachments[0].attachment_type == "file"
    assert message.content.participants == []
    assert message.sender == USER and message.deleted_on is None and message.metadata is None


def test_models_of_the_generated_kind_convert_like_autorest() -> None:
    error = ChatError.deserialize({"code": "Forbidden", "message": "no", "target": "t",
                                   "innererror": {"code": "Inner", "message": "why"}})
    assert error.inner_error is not None and error.inner_error.code == "Inner"
    assert error.as_dict() == {"code": "Forbidden", "message": "no", "target": "t",
                               "inner_error": {"code": "Inner", "message": "why"}}
    assert error.serialize() == {"code": "Forbidden", "message": "no"}
    assert SendChatMessageResult.from_dict({"id": "5"}) == SendChatMessageResult(id="5")


# -- endpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://127.8.9.10", "http://[::1]:8080/x", "http://localhost",
                                 "http://LOCALHOST:5", "http://api.localhost"])
def test_loopback_urls(url: str) -> None:
    assert is_loopback_url(url)
    assert normalize_endpoint(url) == url


@pytest.mark.parametrize("url", ["http://10.0.0.1", "http://example.com", "http://localhost.example.com",
                                 "http://128.0.0.1"])
def test_plain_http_elsewhere_is_refused(url: str) -> None:
    assert not is_loopback_url(url)
    with pytest.raises(ValueError, match="only allowed to a loopback host"):
        normalize_endpoint(url)


def test_endpoint_defaults_and_errors() -> None:
    assert normalize_endpoint("acs.example.com") == "https://acs.example.com"
    with pytest.raises(ValueError, match="Host URL must be a string"):
        normalize_endpoint(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid URL"):
        normalize_endpoint("https://")


def test_connection_strings() -> None:
    assert parse_connection_string("endpoint=http://127.0.0.1:9/;accesskey=a2V5") == ("http://127.0.0.1:9", "a2V5")
    assert parse_connection_string("AccessKey=a2V5==;Endpoint=https://h/;x=y") == ("https://h", "a2V5==")
    with pytest.raises(ValueError, match="endpoint=https://<ResourceUrl>/;accesskey=<KeyValue>"):
        parse_connection_string("endpoint=https://h/")


# -- identity ---------------------------------------------------------------------------------


def test_identity_requests() -> None:
    req = IdentityRequests("2023-10-01")
    create = req.create_user()
    assert (create.method, create.url, create.body, create.success) == ("POST", "/identities", None, 201)
    both = req.create_user_and_token([CommunicationTokenScope.CHAT, "voip"], timedelta(hours=1, seconds=59))
    assert body_of(both) == {"createTokenWithScopes": ["chat", "voip"], "expiresInMinutes": 60}
    token = req.get_token(CommunicationUserIdentifier("8:acs:r_u"), ["chat.join"], None)
    assert token.url == "/identities/8:acs:r_u/:issueAccessToken" and body_of(token) == {"scopes": ["chat.join"]}
    assert token.success == 200
    revoke = req.revoke_tokens(CommunicationUserIdentifier("8:acs:r_u"))
    assert (revoke.url, revoke.body, revoke.success) == ("/identities/8:acs:r_u/:revokeAccessTokens", None, 204)
    delete = req.delete_user(CommunicationUserIdentifier("8:acs:r_u"))
    assert (delete.method, delete.success) == ("DELETE", 204)
    teams = req.get_token_for_teams_user("t", "app", "oid")
    assert body_of(teams) == {"token": "t", "appId": "app", "userId": "oid"}
    parsed = token.parse(b'{"token":"a.b.c","expiresOn":"2023-10-10T21:39:39.3244584+00:00"}')
    assert parsed.expires_on == "2023-10-10T21:39:39.3244584+00:00"  # the raw string, as upstream


@pytest.mark.parametrize("body", [None, b'{"scopes":["chat"]}'])
def test_hmac_policy_signs_what_the_server_verifies(body: bytes | None) -> None:
    key = "c2VjcmV0LWtleS0xMjM0NTY3ODkw"
    call = IdentityRequests("2023-10-01").get_token(CommunicationUserIdentifier("8:acs:r_u"), ["chat"], None)
    call.body = body
    request = call.request("http://127.0.0.1:8080")
    HMACCredentialPolicy(key).on_request(PipelineRequest(request, PipelineContext(None)))
    headers = request.headers
    assert headers["x-ms-content-sha256"] == (content_hash(body) if body else EMPTY_CONTENT_HASH)
    signature = parse_authorization(headers["Authorization"])
    assert signature is not None
    target = "/identities/8:acs:r_u/:issueAccessToken?api-version=2023-10-01"
    assert verify(decode_key(key), "POST", [target], ["127.0.0.1:8080"], headers["x-ms-date"],
                  headers["x-ms-content-sha256"], signature)
    assert not verify(decode_key(key), "POST", [target], ["127.0.0.1:8081"], headers["x-ms-date"],
                      headers["x-ms-content-sha256"], signature)


def test_hmac_policy_refuses_a_key_that_is_not_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        HMACCredentialPolicy("not base64!")
