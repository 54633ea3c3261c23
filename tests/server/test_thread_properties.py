"""2025-03-15 thread properties over raw HTTP, on both engines: retention policy and metadata on create,
get and PATCH (merge-patch), their validation, and the system messages and events PATCH writes.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.realtime.helpers import open_stream, ws_url

from ..conftest import RunningServer
from ..support import User, new_user

V = "2025-03-15"
MERGE = {"Content-Type": "application/merge-patch+json"}
THIRTY = {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}


def call(server: RunningServer, user: User, method: str, path: str, version: str = V, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {user.token}", **kw.pop("headers", {})}
    return requests.request(method, f"{server.http_endpoint}{path}?api-version={version}", headers=headers,
                            timeout=10, **kw)


def create(server: RunningServer, user: User, **body: Any) -> dict[str, Any]:
    response = call(server, user, "POST", "/chat/threads", json={"topic": "props", **body})
    assert response.status_code == 201, response.text
    thread: dict[str, Any] = response.json()["chatThread"]
    return thread


def props(server: RunningServer, user: User, thread_id: str, version: str = V) -> dict[str, Any]:
    response = call(server, user, "GET", f"/chat/threads/{thread_id}", version)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def patch(server: RunningServer, user: User, thread_id: str, body: Any) -> requests.Response:
    return call(server, user, "PATCH", f"/chat/threads/{thread_id}", json=body, headers=MERGE)


def system_messages(server: RunningServer, user: User, thread_id: str, version: str = V) -> list[dict[str, Any]]:
    response = call(server, user, "GET", f"/chat/threads/{thread_id}/messages", version)
    assert response.status_code == 200
    return [m for m in response.json()["value"] if m["type"] not in ("text", "html")]


@pytest.fixture(scope="module")
def owner(server: RunningServer) -> User:
    return new_user(server)


def test_retention_policy_is_returned_by_create_and_get(server: RunningServer, owner: User) -> None:
    made = create(server, owner, retentionPolicy=THIRTY, metadata={"team": "a"})
    assert made["retentionPolicy"] == THIRTY and made["metadata"] == {"team": "a"}
    got = props(server, owner, made["id"])
    assert got["retentionPolicy"] == THIRTY and got["metadata"] == {"team": "a"}
    none = create(server, owner, retentionPolicy={"kind": "none"})
    assert props(server, owner, none["id"])["retentionPolicy"] == {"kind": "none"}
    plain = create(server, owner)
    assert "retentionPolicy" not in props(server, owner, plain["id"])
    # older api-versions do not know the field
    assert "retentionPolicy" not in props(server, owner, made["id"], "2024-03-07")


BAD_POLICIES = [
    ({"kind": "bogus"}, "retentionPolicy.kind"),
    ({}, "retentionPolicy.kind"),
    ({"kind": "threadCreationDate"}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": 29}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": 91}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": -30}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": 10**20}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": None}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": None}, "retentionPolicy.kind"),
    ({"kind": "ThreadCreationDate", "deleteThreadAfterDays": 30}, "retentionPolicy.kind"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": "30"}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": 30.5}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "threadCreationDate", "deleteThreadAfterDays": True}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "none", "deleteThreadAfterDays": 30}, "retentionPolicy.deleteThreadAfterDays"),
    ({"kind": "none", "extra": 1}, "retentionPolicy.extra"),
]


@pytest.mark.parametrize(("policy", "target"), BAD_POLICIES)
def test_bad_retention_policies_are_400_with_target(
    server: RunningServer, owner: User, policy: dict[str, Any], target: str
) -> None:
    before = call(server, owner, "GET", "/chat/threads").json()["value"]
    response = call(server, owner, "POST", "/chat/threads", json={"topic": "bad", "retentionPolicy": policy})
    assert response.status_code == 400
    assert response.headers["x-ms-error-code"] == "BadRequest"
    assert response.json()["error"]["code"] == "BadRequest"
    assert response.json()["error"]["target"] == target
    assert len(call(server, owner, "GET", "/chat/threads").json()["value"]) == len(before), "nothing created"

    thread = create(server, owner, retentionPolicy=THIRTY)
    response = patch(server, owner, thread["id"], {"topic": "changed", "retentionPolicy": policy})
    assert response.status_code == 400 and response.json()["error"]["target"] == target
    after = props(server, owner, thread["id"])
    assert (after["topic"], after["retentionPolicy"]) == ("props", THIRTY), "a refused PATCH changes nothing"


def test_non_object_policies_are_400(server: RunningServer, owner: User) -> None:
    for policy in ("threadCreationDate", 30, ["none"]):
        response = call(server, owner, "POST", "/chat/threads", json={"topic": "bad", "retentionPolicy": policy})
        assert response.status_code == 400, policy
        assert response.json()["error"]["code"] == "BadRequest"


def test_patch_is_a_merge_patch(server: RunningServer, owner: User) -> None:
    thread = create(server, owner, retentionPolicy=THIRTY, metadata={"a": "1", "b": "2"})
    tid = thread["id"]
    assert patch(server, owner, tid, {"topic": "renamed"}).status_code == 204
    got = props(server, owner, tid)
    assert (got["topic"], got["metadata"], got["retentionPolicy"]) == ("renamed", {"a": "1", "b": "2"}, THIRTY)

    sixty = {"kind": "threadCreationDate", "deleteThreadAfterDays": 60}
    assert patch(server, owner, tid, {"retentionPolicy": sixty, "metadata": {"a": None, "c": "3"}}).status_code == 204
    got = props(server, owner, tid)
    assert (got["topic"], got["metadata"], got["retentionPolicy"]) == ("renamed", {"b": "2", "c": "3"}, sixty)

    assert patch(server, owner, tid, {"retentionPolicy": None}).status_code == 204
    got = props(server, owner, tid)
    assert "retentionPolicy" not in got and got["metadata"] == {"b": "2", "c": "3"}

    assert patch(server, owner, tid, {"metadata": None, "retentionPolicy": {"kind": "none"}}).status_code == 204
    got = props(server, owner, tid)
    assert (got["metadata"], got["retentionPolicy"], got["topic"]) == ({}, {"kind": "none"}, "renamed")


def test_concurrent_patches_each_adding_a_key_keep_every_key(server: RunningServer, owner: User) -> None:
    """The merge is in the store's write, under the thread's lock: PATCHes at once drop no key, pass no limit."""
    tid = create(server, owner, metadata={"base": "0"})["id"]
    n = 16
    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(lambda i: patch(server, owner, tid, {"metadata": {f"k{i}": str(i)}}).status_code,
                              range(n)))
    assert codes == [204] * n
    assert props(server, owner, tid)["metadata"] == {"base": "0", **{f"k{i}": str(i) for i in range(n)}}

    # each fits the 1,024 bytes alone, and two more fit together, not three: the others get ACS's 400
    big = "x" * 400
    tid = create(server, owner, metadata={"base": "0"})["id"]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda i: patch(server, owner, tid, {"metadata": {f"b{i}": big}}), range(6)))
    assert sorted(a.status_code for a in answers) == [204, 204, 400, 400, 400, 400]
    for refused in (a for a in answers if a.status_code == 400):
        assert refused.json()["error"] == {
            "code": "BadRequest", "message": "metadata must not exceed 1024 bytes.", "target": "metadata"}
    stored = props(server, owner, tid)["metadata"]
    assert len(stored) == 3 and stored["base"] == "0" and len(json.dumps(stored, separators=(",", ":"))) <= 1024


def test_topic_updated_message_only_when_the_topic_changes(server: RunningServer, owner: User) -> None:
    tid = create(server, owner)["id"]
    assert [m["type"] for m in system_messages(server, owner, tid)] == ["topicUpdated", "participantAdded"]
    assert patch(server, owner, tid, {"topic": "props", "metadata": {"k": "v"}}).status_code == 204
    assert patch(server, owner, tid, {"retentionPolicy": THIRTY}).status_code == 204
    assert len(system_messages(server, owner, tid)) == 2, "same topic, metadata, retention: no message"
    assert patch(server, owner, tid, {"topic": "new topic"}).status_code == 204
    newest = system_messages(server, owner, tid)[0]
    assert newest["type"] == "topicUpdated"
    assert newest["content"]["topic"] == "new topic"
    assert newest["content"]["initiatorCommunicationIdentifier"]["rawId"] == owner.id
    assert "senderCommunicationIdentifier" not in newest and "senderDisplayName" not in newest


def test_properties_updated_events_carry_properties_and_retention(server: RunningServer, owner: User) -> None:
    tid = create(server, owner, metadata={"k": "v"})["id"]

    async def main() -> list[dict[str, Any]]:
        stream = await open_stream(ws_url(server), owner.token)
        try:
            assert patch(server, owner, tid, {"retentionPolicy": THIRTY}).status_code == 204
            assert patch(server, owner, tid, {"topic": "evented", "metadata": {"k": None}}).status_code == 204
            await stream.wait_type("chatThreadPropertiesUpdated", 2)
            return [f["data"] for f in stream.of_type("chatThreadPropertiesUpdated")]
        finally:
            await stream.close()

    first, second = asyncio.run(main())
    assert first["threadId"] == tid
    assert first["properties"] == {"topic": "props", "metadata": {"k": "v"}}
    assert first["retentionPolicy"] == THIRTY
    assert first["updatedBy"]["id"] == {"kind": "communicationUser", "communicationUserId": owner.id}
    assert second["properties"] == {"topic": "evented"}
    assert second["retentionPolicy"] == THIRTY


def test_participant_system_messages_name_each_participant_fully(server: RunningServer, owner: User) -> None:
    guest = new_user(server)
    tid = create(server, owner, participants=[{
        "communicationIdentifier": {"rawId": guest.id, "communicationUser": {"id": guest.id}},
        "displayName": "Guest", "shareHistoryTime": "2024-01-02T03:04:05Z", "metadata": {"role": "x"},
    }])["id"]
    added = system_messages(server, owner, tid)[-1]
    assert added["type"] == "participantAdded"
    by_id = {p["communicationIdentifier"]["rawId"]: p for p in added["content"]["participants"]}
    assert by_id[guest.id] == {
        "communicationIdentifier": {"rawId": guest.id, "kind": "communicationUser",
                                    "communicationUser": {"id": guest.id}},
        "displayName": "Guest", "shareHistoryTime": "2024-01-02T03:04:05Z", "metadata": {"role": "x"},
    }
    assert by_id[owner.id]["shareHistoryTime"] == "1970-01-01T00:00:00Z"
    assert added["content"]["initiatorCommunicationIdentifier"]["rawId"] == owner.id
    # metadata is a 2025-03-15 field
    old = system_messages(server, owner, tid, "2024-03-07")[-1]
    assert "metadata" not in {k for p in old["content"]["participants"] for k in p}

    remove = call(server, owner, "POST", f"/chat/threads/{tid}/participants/:remove",
                  json={"rawId": guest.id, "communicationUser": {"id": guest.id}})
    assert remove.status_code == 204
    removed = system_messages(server, owner, tid)[0]
    assert removed["type"] == "participantRemoved"
    assert removed["content"]["participants"] == [by_id[guest.id]]
    assert removed["content"]["initiatorCommunicationIdentifier"]["rawId"] == owner.id
