"""Input bounds on a real server, both engines: times round-trip or get 400, and no known input gives a 500.

Issue 9, classes 3 and 4. A time is accepted when it lies between
0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z once in UTC, and then reads
back (whole seconds, in UTC) on every path; anything else is a 400 naming the
field, and nothing is written. Integers, cursors, ids and headers are bounded
at the edge (``docs/limits.md``).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
import requests

from threadline.chat import ChatClient, ChatParticipant, CommunicationTokenCredential, CommunicationUserIdentifier
from threadline.identity.hmac import sign

from ..conftest import RunningServer
from ..realtime.helpers import open_stream, ws_url
from .helpers import IDENTITY, Chat, ChatUser, identifier, make_user, q, server_key

TOO_LATE = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC: the time that broke list_participants


def assert_bad_request(answer: requests.Response, target: str | None) -> dict[str, Any]:
    """A 400 in the ACS shape, naming ``target``."""
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    assert answer.headers["x-ms-error-code"] == "BadRequest"
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == "BadRequest"
    assert error.get("target") == target, error
    return error


@pytest.fixture(scope="module")
def people(acs_server: RunningServer) -> list[ChatUser]:
    return [make_user(acs_server) for _ in range(8)]


@pytest.fixture
def room(acs_server: RunningServer, people: list[ChatUser]) -> tuple[Chat, str]:
    owner = Chat(acs_server.http_endpoint, people[0].token)
    thread_id = owner.create_thread("bounds", [])
    owner.send(thread_id, "hello")
    return owner, thread_id


def member(user: str, share: Any) -> dict[str, Any]:
    return {"communicationIdentifier": identifier(user), "shareHistoryTime": share}


def participants(owner: Chat, thread_id: str) -> dict[str, dict[str, Any]]:
    return {p["communicationIdentifier"]["rawId"]: p for p in owner.follow(f"/chat/threads/{q(thread_id)}/participants",
                                                                          200)}


# -- class 3: times ----------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [TOO_LATE, "10000-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
                                   "0000-12-31T23:59:59Z", "yesterday", "2024-13-01T00:00:00Z", 1700000000, ""])
def test_share_history_time_outside_the_range_is_refused_and_nothing_is_written(
    acs_server: RunningServer, people: list[ChatUser], room: tuple[Chat, str], share: Any
) -> None:
    owner, thread_id = room
    bob = people[1]
    added = owner.call("POST", f"/chat/threads/{q(thread_id)}/participants/:add", {"participants": [member(bob.id,
                                                                                                            share)]})
    assert added.status_code == 400, added.text
    assert added.json()["error"]["target"] in ("shareHistoryTime", "participants[0].shareHistoryTime")
    created = owner.call("POST", "/chat/threads", {"topic": "t", "participants": [member(bob.id, share)]})
    assert created.status_code == 400, created.text
    # Nothing written: the thread still lists (the 500 of the issue), bob is not in it, and was in no new thread.
    assert set(participants(owner, thread_id)) == {people[0].id}
    assert Chat(acs_server.http_endpoint, bob.token).follow("/chat/threads", 200) == []


ROUND_TRIPS = [
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
    ("0999-06-15T12:00:00Z", "0999-06-15T12:00:00Z"),
    ("1969-07-20T20:17:40Z", "1969-07-20T20:17:40Z"),
    ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
    ("2024-05-06T07:08:09.1234567+02:00", "2024-05-06T05:08:09Z"),
    ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"),
    ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59Z"),
    ("9999-12-31T23:59:59+14:00", "9999-12-31T09:59:59Z"),
    ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00Z"),
]


def test_share_history_times_across_the_range_round_trip_and_members_stay_removable(
    acs_server: RunningServer, people: list[ChatUser], room: tuple[Chat, str]
) -> None:
    owner, thread_id = room
    for n, (sent, shown) in enumerate(ROUND_TRIPS):
        user = make_user(acs_server)
        added = owner.call("POST", f"/chat/threads/{q(thread_id)}/participants/:add",
                           {"participants": [member(user.id, sent)]})
        assert added.status_code == 201, (sent, added.text)
        for version in ("2024-03-07", "2025-03-15"):
            listed = owner.call("GET", f"/chat/threads/{q(thread_id)}/participants", version=version,
                                params={"maxPageSize": 200})
            assert listed.status_code == 200, listed.text
            times = {p["communicationIdentifier"]["rawId"]: p["shareHistoryTime"] for p in listed.json()["value"]}
            assert times[user.id] == shown, (sent, version)
        if n % 2:  # half leave while the others stay listed: removal works whatever the time
            assert owner.call("POST", f"/chat/threads/{q(thread_id)}/participants/:remove",
                              identifier(user.id)).status_code == 204
            assert user.id not in participants(owner, thread_id)
    created = owner.call("POST", "/chat/threads", {"topic": "t", "participants": [member(people[2].id,
                                                                                         "9999-12-31T23:59:59Z")]})
    assert created.status_code == 201, created.text


def test_our_sdk_round_trips_the_extreme_share_history_times(acs_server: RunningServer,
                                                             people: list[ChatUser]) -> None:
    earliest, latest = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    with ChatClient(acs_server.http_endpoint, CommunicationTokenCredential(people[0].token)) as client:
        thread = client.create_chat_thread("sdk bounds").chat_thread
        assert thread is not None
        chat = client.get_chat_thread_client(thread.id)
        chat.add_participants([
            ChatParticipant(identifier=CommunicationUserIdentifier(people[3].id), share_history_time=earliest),
            ChatParticipant(identifier=CommunicationUserIdentifier(people[4].id), share_history_time=latest),
        ])
        shares = {p.identifier.raw_id: p.share_history_time for p in chat.list_participants()}
        assert (shares[people[3].id], shares[people[4].id]) == (earliest, latest)


@pytest.mark.parametrize("path", ["/chat/threads", "/chat/threads/{thread}/messages"])
def test_start_time_is_bounded_like_every_time(room: tuple[Chat, str], path: str) -> None:
    owner, thread_id = room
    path = path.format(thread=q(thread_id))
    for bad in (TOO_LATE, "0001-01-01T00:00:00+14:00", "10000-01-01T00:00:00Z", "x" * 5000, "²"):
        assert_bad_request(owner.call("GET", path, params={"startTime": bad}), "startTime")
    assert owner.call("GET", path, params={"startTime": "9999-12-31T23:59:59Z"}).json()["value"] == []
    everything = owner.call("GET", path, params={"startTime": "0001-01-01T00:00:00Z"})
    assert everything.status_code == 200 and everything.json()["value"]


# -- class 4: inputs that gave 500 -------------------------------------------------------------------

THREAD, MESSAGES = "/chat/threads/{thread}", "/chat/threads/{thread}/messages"
QUERIES = [
    (MESSAGES, {"syncState": "²"}, "syncState"),
    (MESSAGES, {"syncState": "99999999999999999999"}, "syncState"),
    (MESSAGES, {"syncState": "9223372036854775808"}, "syncState"),
    (MESSAGES, {"syncState": "-1"}, "syncState"),
    (THREAD + "/participants", {"skip": "99999999999999999999"}, "skip"),
    (THREAD + "/participants", {"skip": "²"}, "skip"),
    (THREAD + "/readReceipts", {"skip": "99999999999999999999"}, "skip"),
    (THREAD + "/readReceipts", {"maxPageSize": "1" + "0" * 30}, "maxPageSize"),
    ("/chat/threads", {"syncState": "99999999999999999999.6161"}, "syncState"),
    ("/chat/threads", {"syncState": "1.00"}, "syncState"),  # a NUL thread id, which PostgreSQL cannot take
    ("/chat/threads", {"syncState": "1.ff"}, "syncState"),  # not UTF-8
    ("/chat/threads", {"syncState": "1." + "61" * 300}, "syncState"),
    ("/chat/threads", {"maxPageSize": "\u0663"}, "maxPageSize"),
    (THREAD, {"x": "1"}, None),  # unknown parameters are ignored
]


@pytest.mark.parametrize(("path", "params", "target"), QUERIES)
def test_query_inputs_that_gave_500_give_400(room: tuple[Chat, str], path: str, params: dict[str, str],
                                             target: str | None) -> None:
    owner, thread_id = room
    answer = owner.call("GET", path.format(thread=q(thread_id)), params=params)
    if target is None:
        assert answer.status_code == 200, answer.text
    else:
        assert_bad_request(answer, target)


@pytest.mark.parametrize("path", [MESSAGES, "/chat/threads"])
def test_every_refused_sync_state_gets_the_same_body(room: tuple[Chat, str], path: str) -> None:
    """A cursor is read as any integer is (``parse_int_text``), but refused with the cursor's own message."""
    owner, thread_id = room
    path = path.format(thread=q(thread_id))
    for bad in ("²", "x", "-1", "1e3", "0x10", "9223372036854775808", "9" * 400):
        error = assert_bad_request(owner.call("GET", path, params={"syncState": bad}), "syncState")
        assert error["message"] == "The continuation token is not valid.", (bad, error)
    # Within 0..2**63-1, with an optional sign or leading zeros, a number is a number: a page.
    messages = path.endswith("/messages")
    for fits, everything in (("0", False), ("+0", False), ("-0", False), ("0" * 300 + "1", False),
                             ("+9223372036854775807", True)):
        answer = owner.call("GET", path, params={"syncState": fits if messages else f"{fits}.61"})
        assert answer.status_code == 200, (fits, answer.text)
        found = [m["content"]["message"] for m in answer.json()["value"] if m["type"] == "text"] if messages \
            else [t["id"] for t in answer.json()["value"] if t["id"] == thread_id]
        assert found == ((["hello"] if messages else [thread_id]) if everything else []), fits


NOT_UTF8, NOT_JSON = "The request body is not valid UTF-8.", "The request body is not valid JSON."


@pytest.mark.parametrize(("body", "message"), [
    (b'{"content": "\xff"}', NOT_UTF8), (b'{"content": "\xed\xa0\x80"}', NOT_UTF8), (b"\xff\xfe", NOT_UTF8),
    # In fields the model does not have, which msgspec skips without checking their bytes:
    (b'{"content": "ok", "\xff": 1}', NOT_UTF8), (b'{"content": "ok", "x": "\xff"}', NOT_UTF8),
    (b'{"content": "ok", "x": {"y": ["\xed\xa0\x80"]}}', NOT_UTF8),
    # Lone surrogates escaped in JSON: msgspec refuses them even in skipped fields.
    (b'{"content": "\\ud800"}', NOT_JSON), (b'{"content": "ok", "x": "\\udc00"}', NOT_JSON),
])
def test_a_body_that_is_not_utf8_gives_400(room: tuple[Chat, str], body: bytes, message: str) -> None:
    owner, thread_id = room
    answer = owner.session.post(f"{owner.base}/chat/threads/{q(thread_id)}/messages?api-version=2024-03-07",
                                data=body, headers={"Authorization": f"Bearer {owner.token}"}, timeout=30)
    assert assert_bad_request(answer, None)["message"] == message
    assert [m["content"]["message"] for m in owner.messages(thread_id) if m["type"] == "text"] == ["hello"]


def test_repeatability_id_is_bounded_and_honoured_up_to_its_bound(room: tuple[Chat, str]) -> None:
    owner, thread_id = room
    path = f"/chat/threads/{q(thread_id)}/messages"
    # Incompressible and two UTF-8 bytes per character: the longest key an index row must hold.
    longest = "".join(secrets.choice("àéîõüÿ0123456789abcdef") for _ in range(256))  # sent as latin-1
    first = owner.call("POST", path, {"content": "once"}, headers={"repeatability-request-id": longest})
    again = owner.call("POST", path, {"content": "once"}, headers={"repeatability-request-id": longest})
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["id"] == again.json()["id"]
    too_long = secrets.token_hex(2500)  # the few KB that overflowed PostgreSQL's index row
    for route, body in ((path, {"content": "x"}), ("/chat/threads", {"topic": "x"}),
                        (f"/chat/threads/{q(thread_id)}/readReceipts", {"chatMessageId": first.json()["id"]})):
        answer = owner.call("POST", route, body, headers={"repeatability-request-id": too_long})
        assert_bad_request(answer, "repeatability-request-id")
    assert len([m for m in owner.messages(thread_id) if m["type"] == "text"]) == 2


def test_client_request_id_is_bounded_and_not_echoed_past_it(room: tuple[Chat, str]) -> None:
    owner, thread_id = room
    fits = "c" * 256
    ok = owner.call("GET", f"/chat/threads/{q(thread_id)}", headers={"x-ms-client-request-id": fits})
    assert ok.status_code == 200 and ok.headers["x-ms-client-request-id"] == fits
    over = owner.call("GET", f"/chat/threads/{q(thread_id)}", headers={"x-ms-client-request-id": fits + "c"})
    assert_bad_request(over, "x-ms-client-request-id")
    assert "x-ms-client-request-id" not in over.headers


@pytest.mark.parametrize("name", ["thread", "message"])
def test_ids_longer_than_any_id_give_400(room: tuple[Chat, str], name: str) -> None:
    owner, thread_id = room
    long_id = "19:" + "a" * 300
    path = f"/chat/threads/{q(long_id)}" if name == "thread" else f"/chat/threads/{q(thread_id)}/messages/{'9' * 300}"
    assert_bad_request(owner.call("GET", path), "thread_id" if name == "thread" else "message_id")
    receipt = owner.call("POST", f"/chat/threads/{q(thread_id)}/readReceipts", {"chatMessageId": "9" * 300})
    assert_bad_request(receipt, "chatMessageId")
    removed = owner.call("POST", f"/chat/threads/{q(thread_id)}/participants/:remove", {"rawId": "8:acs:" + "a" * 300})
    assert_bad_request(removed, "communicationIdentifier.rawId")


@pytest.mark.parametrize("date", ["Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
                                  "Mon, 01 Jan 2020 99999999999999999:00:00 GMT",
                                  "Mon, 01 Jan 2020 00:00:00 +99999999999999999999"])
def test_an_hmac_date_with_huge_numbers_gives_401(acs_server: RunningServer, date: str) -> None:
    target = f"/identities?api-version={IDENTITY}"
    host = acs_server.http_endpoint.split("://", 1)[1]
    headers = sign(server_key(acs_server), "POST", target, host, b"{}", 0)
    headers["x-ms-date"] = date
    answer = requests.post(acs_server.http_endpoint + target, data=b"{}", headers=headers, timeout=10)
    assert answer.status_code == 401, answer.text
    assert answer.headers["x-ms-error-code"] == answer.json()["error"]["code"] == "Unauthorized"


@pytest.mark.parametrize("after", ["99999999999999999999", "9223372036854775808", "0" * 30 + "1" + "0" * 20, "²",
                                   "-1"])
def test_a_realtime_resume_position_past_64_bits_is_closed_as_a_bad_request(acs_server: RunningServer,
                                                                             people: list[ChatUser],
                                                                             after: str) -> None:
    async def close_of() -> tuple[int, str]:
        stream = await open_stream(ws_url(acs_server, "after=" + quote(after)), people[0].token, synced=False)
        code = await stream.wait_closed()
        await stream.close()
        return code, stream.close_reason

    # Positions are tokens now; a number within 64 bits is an old position (resumeGap), anything else malformed.
    assert asyncio.run(close_of()) == (4000, "after must be a token from a previous event's position.")
