"""The admin API on both engines: HMAC like the identity API, resource-wide paging and search, bad input 400."""

from __future__ import annotations

import base64
import secrets

import msgspec
import pytest
from azure.communication.chat import ChatParticipant, ChatThreadClient
from azure.communication.identity import CommunicationUserIdentifier
from azure.core.exceptions import HttpResponseError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.store import positions

from ..conftest import RunningServer
from ..support import User, new_user, official_chat
from .helpers import acs_error, admin_url, signed


def _all_pages(server: RunningServer, path: str, **params: object) -> list[list[dict[str, object]]]:
    """Follow nextLink (bounded) and return every page."""
    pages = []
    response = signed(server, "GET", path, **params)
    for _ in range(200):
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["value"])
        if not body["nextLink"]:
            return pages
        link = body["nextLink"]
        assert link.startswith(path + "?") and "continuationToken=" in link and "api-version=" in link
        response = signed(server, "GET", link)
    raise AssertionError("paging did not end")


def test_refused_without_or_with_a_wrong_signature(server: RunningServer) -> None:
    import requests

    for path in ("/admin/identities", "/admin/threads", "/admin/status"):
        acs_error(requests.get(admin_url(server, path), timeout=30), 401, "Unauthorized")
        acs_error(signed(server, "GET", path, key=secrets.token_bytes(32)), 401, "Unauthorized")
        assert signed(server, "GET", path).status_code == 200
    acs_error(signed(server, "POST", "/admin/identities", {}, key=secrets.token_bytes(32)), 401)
    # A bearer token of a chat user is no admin credential.
    user = new_user(server)
    answer = requests.get(admin_url(server, "/admin/threads"), headers={"Authorization": f"Bearer {user.token}"},
                          timeout=30)
    acs_error(answer, 401)


def test_identities_page_and_search(server: RunningServer) -> None:
    made = [signed(server, "POST", "/admin/identities", {}) for _ in range(5)]
    assert all(r.status_code == 201 for r in made)
    ids = [r.json()["identity"]["id"] for r in made]
    assert all(i.startswith(f"8:acs:{server.resource_id}_") for i in ids)
    # The shared server holds other tests' identities too: the newest five are these, newest first.
    pages, response = [], signed(server, "GET", "/admin/identities", maxPageSize=2)
    for _ in range(3):
        assert response.status_code == 200, response.text
        pages.append(response.json()["value"])
        if not response.json()["nextLink"]:
            break
        response = signed(server, "GET", response.json()["nextLink"])
    seen = [u["id"] for page in pages for u in page]
    assert [len(page) for page in pages][:2] == [2, 2] and len(set(seen)) == len(seen) >= 5
    assert set(seen[:5]) == set(ids)
    created = [u["createdOn"] for page in pages for u in page]  # whole seconds: ties are ordered by ms, then id
    assert created == sorted(created, reverse=True)
    # Search by part of an id, in any case.
    part = ids[2].rsplit("_", 1)[1][:13].upper()
    found = signed(server, "GET", "/admin/identities", search=part).json()["value"]
    assert [u["id"] for u in found] == [ids[2]]
    one = signed(server, "GET", f"/admin/identities/{ids[0]}")
    assert one.status_code == 200 and one.json()["id"] == ids[0] and one.json()["deletedOn"] is None
    acs_error(signed(server, "GET", f"/admin/identities/8:acs:{server.resource_id}_nobody"), 404)


def _thread(server: RunningServer, owner: User, topic: str, *others: User) -> str:
    chat = official_chat(server, owner)
    members = [ChatParticipant(identifier=o.identifier, display_name=f"u{i}") for i, o in enumerate(others)]
    return str(chat.create_chat_thread(topic, thread_participants=members or None).chat_thread.id)


def _in(server: RunningServer, user: User, thread_id: str) -> ChatThreadClient:
    """The official thread client of a user (HTTPS, trusting the test CA)."""
    return official_chat(server, user).get_chat_thread_client(thread_id, connection_verify=server.cert_path)


def test_threads_page_and_search_by_topic_and_member(server: RunningServer) -> None:
    tag = secrets.token_hex(5)
    alice, bob = new_user(server), new_user(server)
    made = [_thread(server, alice, f"Explorer {tag} #{i}") for i in range(3)]
    with_bob = _thread(server, alice, f"Other {tag}", bob)
    pages = _all_pages(server, "/admin/threads", topic=f"explorer {tag.upper()}", maxPageSize=2)
    assert [len(p) for p in pages] == [2, 1]
    listed = [t for p in pages for t in p]
    assert sorted(t["id"] for t in listed) == sorted(made)
    activity = [t["lastMessageReceivedOn"] for t in listed]
    assert activity == sorted(activity, reverse=True)  # latest activity first (whole seconds shown)
    last = next(t for t in listed if t["id"] == made[2])
    assert last["topic"] == f"Explorer {tag} #2" and last["participantCount"] == 1
    assert last["createdBy"]["rawId"] == alice.id and last["deletedOn"] is None
    by_member = signed(server, "GET", "/admin/threads", member=bob.id).json()["value"]
    assert [t["id"] for t in by_member] == [with_bob]
    assert by_member[0]["participantCount"] == 2
    both = signed(server, "GET", "/admin/threads", member=bob.id, topic="Explorer").json()["value"]
    assert both == []


def test_thread_detail_and_messages(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = _thread(server, alice, "Detail", bob)
    chat = _in(server, alice, thread_id)
    ids = [chat.send_message(f"m{i}", sender_display_name="Alice").id for i in range(3)]
    chat.update_message(ids[0], content="m0 edited")
    chat.delete_message(ids[1])
    _in(server, bob, thread_id).send_read_receipt(ids[2])
    detail = signed(server, "GET", f"/admin/threads/{thread_id}")
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["thread"]["topic"] == "Detail" and body["thread"]["participantCount"] == 2
    assert {p["communicationIdentifier"]["rawId"] for p in body["participants"]} == {alice.id, bob.id}
    assert [(r["senderCommunicationIdentifier"]["rawId"], r["chatMessageId"]) for r in body["readReceipts"]] == [
        (bob.id, ids[2])
    ]
    pages = _all_pages(server, f"/admin/threads/{thread_id}/messages", maxPageSize=2)
    messages = [m for p in pages for m in p]
    assert [m["sequenceId"] for m in messages] == sorted((m["sequenceId"] for m in messages), key=int, reverse=True)
    by_id = {m["id"]: m for m in messages}
    assert by_id[ids[2]]["content"]["message"] == "m2" and by_id[ids[2]]["senderDisplayName"] == "Alice"
    assert by_id[ids[0]]["content"]["message"] == "m0 edited" and by_id[ids[0]]["editedOn"]
    assert by_id[ids[1]]["deletedOn"] and "content" not in by_id[ids[1]]
    members = [p["communicationIdentifier"]["rawId"] for page in
               _all_pages(server, f"/admin/threads/{thread_id}/participants", maxPageSize=1) for p in page]
    assert members == [alice.id, bob.id]  # join order, one a page
    receipts = _all_pages(server, f"/admin/threads/{thread_id}/readReceipts", maxPageSize=1)
    assert [[r["chatMessageId"] for r in page] for page in receipts] == [[ids[2]]]
    system = [m for m in messages if m["type"] not in ("text", "html")]
    assert {m["type"] for m in system} >= {"participantAdded"}
    acs_error(signed(server, "GET", "/admin/threads/19:nope@thread.v2"), 404)
    for part in ("messages", "participants", "readReceipts"):
        acs_error(signed(server, "GET", f"/admin/threads/19:nope@thread.v2/{part}"), 404)


@pytest.mark.parametrize(
    ("path", "params", "target"),
    [
        ("/admin/threads", {"continuationToken": "not-a-token"}, "continuationToken"),
        ("/admin/threads", {"continuationToken": base64.urlsafe_b64encode(b'["users",1,"x"]').decode()},
         "continuationToken"),
        ("/admin/threads", {"continuationToken": base64.urlsafe_b64encode(b'["threads","1","x"]').decode()},
         "continuationToken"),
        ("/admin/threads", {"continuationToken": base64.urlsafe_b64encode(b'["threads",-5,"x"]').decode()},
         "continuationToken"),
        ("/admin/identities", {"continuationToken": "%%%"}, "continuationToken"),
        ("/admin/identities", {"continuationToken": "A" * 600}, "continuationToken"),
        ("/admin/identities", {"maxPageSize": "0"}, "maxPageSize"),
        ("/admin/identities", {"maxPageSize": "201"}, "maxPageSize"),
        ("/admin/identities", {"maxPageSize": "ten"}, "maxPageSize"),
        ("/admin/threads", {"topic": "x" * 257}, "topic"),
        ("/admin/threads", {"member": "a\x00b"}, "member"),
        ("/admin/threads/19:x@thread.v2/messages", {"continuationToken": "WyJ0aHJlYWRzIiwxLCJ4Il0"},
         "continuationToken"),
        ("/admin/threads/19:x@thread.v2/participants", {"continuationToken": "WyJ0aHJlYWRzIiwxLCJ4Il0"},
         "continuationToken"),
        ("/admin/threads/19:x@thread.v2/readReceipts", {"maxPageSize": "-1"}, "maxPageSize"),
    ],
)
def test_bad_paging_input_is_400(server: RunningServer, path: str, params: dict[str, str], target: str) -> None:
    error = acs_error(signed(server, "GET", path, **params), 400)
    assert error["target"] == target


def test_a_token_of_one_thread_does_not_page_another(server: RunningServer) -> None:
    alice = new_user(server)
    first, second = _thread(server, alice, "one"), _thread(server, alice, "two")
    for thread_id in (first, second):
        _in(server, alice, thread_id).send_message("x")
    link = signed(server, "GET", f"/admin/threads/{first}/messages", maxPageSize=1).json()["nextLink"]
    token = link.split("continuationToken=")[1].split("&")[0]
    acs_error(signed(server, "GET", f"/admin/threads/{second}/messages", continuationToken=token), 400)


def test_api_version_is_required(server: RunningServer) -> None:
    import requests

    acs_error(requests.get(f"{server.http_endpoint}/admin/status", timeout=30), 400, "MissingApiVersionParameter")
    acs_error(signed(server, "GET", "/admin/status", **{"api-version": "2021-03-07"}), 400, "UnsupportedApiVersion")


def test_act_as_a_user_goes_through_the_chat_rules(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)
    thread_id = _thread(server, alice, "Acting")
    issued = signed(server, "POST", f"/admin/identities/{bob.id}/:issueAccessToken", {"scopes": ["chat"]})
    assert issued.status_code == 200, issued.text
    as_bob = User(CommunicationUserIdentifier(bob.id), issued.json()["token"])
    # Bob is not a member: the admin's token for him gets the chat API's 403, not a bypass.
    with pytest.raises(HttpResponseError) as refused:
        _in(server, as_bob, thread_id).send_message("hi")
    assert refused.value.status_code == 403
    _in(server, alice, thread_id).add_participants(
        [ChatParticipant(identifier=bob.identifier, display_name="Bob")]
    )
    sent = _in(server, as_bob, thread_id).send_message("hi from bob")
    page = signed(server, "GET", f"/admin/threads/{thread_id}/messages", maxPageSize=1).json()["value"]
    assert page[0]["id"] == sent.id and page[0]["senderCommunicationIdentifier"]["rawId"] == bob.id
    acs_error(signed(server, "POST", f"/admin/identities/{bob.id}/:issueAccessToken", {"scopes": ["nope"]}), 400)
    acs_error(signed(server, "POST", f"/admin/identities/8:acs:{server.resource_id}_x/:issueAccessToken",
                     {"scopes": ["chat"]}), 404)


def test_status(server: RunningServer) -> None:
    new_user(server)
    status = signed(server, "GET", "/admin/status")
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["engine"] == server.engine and body["version"] == "0.1.0"
    assert body["eventHub"] == ("redis" if server.engine == "postgres" else "local")
    assert body["nodes"][0]["self"] is True
    assert body["limits"]["participantsPerThread"] == 250 and body["limits"]["messageBytes"] == 28 * 1024
    assert body["throttle"] == "off" and body["counts"]["users"] >= 1
    assert body["metrics"]["requests"] >= 1 and body["metrics"]["eventHubConnected"] == 1
    # Resume tokens over the event partitions (as /chat/realtime's hello): latest is nowhere behind.
    latest, oldest = positions.parse(body["events"]["latest"]), positions.parse(body["events"]["oldestKept"])
    assert isinstance(latest, positions.Cursor) and isinstance(oldest, positions.Cursor)
    assert all(a >= b for a, b in zip(latest.after, oldest.after, strict=True))


def test_search_text_is_literal(server: RunningServer) -> None:
    tag = secrets.token_hex(4)
    alice = new_user(server)
    percent = _thread(server, alice, f"{tag} 100% _done_")
    _thread(server, alice, f"{tag} plain")
    assert [t["id"] for t in signed(server, "GET", "/admin/threads", topic=f"{tag} 100%").json()["value"]] == [percent]
    assert [t["id"] for t in signed(server, "GET", "/admin/threads", topic=f"{tag} _").json()["value"]] == []
    assert signed(server, "GET", "/admin/threads", member="%").json()["value"] == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(
    st.text(min_size=1, max_size=80),
    st.binary(max_size=60).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats(allow_nan=False)), max_size=4)
    .map(lambda v: base64.urlsafe_b64encode(msgspec.json.encode(["threads", *v])).decode().rstrip("=")),
))
def test_any_continuation_token_is_a_page_or_a_400(server: RunningServer, token: str) -> None:
    answer = signed(server, "GET", "/admin/threads", continuationToken=token)
    if answer.status_code != 200:
        assert acs_error(answer, 400)["target"] in ("continuationToken", None)
