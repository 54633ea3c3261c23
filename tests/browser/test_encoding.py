"""Event bodies decoded by the SDK's own code: ``TrouterUtils.toMessageHandler`` from
``@azure/communication-signaling`` (bundled for Node.js), fed with what Threadline encodes.

Covers the fields a live run cannot yet produce on every branch (message attachments and metadata,
thread metadata and retention policy, participant metadata and share-history times, deletion by
policy) and text that trips naive encodings.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from threadline.server.realtime.browser.encoding import notification_body

from .chromium import build_decoder, require_node

A = "8:acs:res_alice"
B = "8:acs:res_bob"
T = "19:abc@thread.v2"
TRICKY = "Ünïcode ☃ 😀 %41 %u0041 \"q\" + & = # \\ / 100%"


def _user(raw: str) -> dict[str, str]:
    return {"kind": "communicationUser", "communicationUserId": raw}


def _decode(items: list[tuple[str, str]]) -> list[dict[str, Any]]:
    require_node()
    script = build_decoder()
    done = subprocess.run(["node", str(script)], input=json.dumps(items), capture_output=True, text=True,
                          timeout=60, check=True)
    decoded: list[dict[str, Any]] = json.loads(done.stdout)
    return decoded


MESSAGE = {
    "threadId": T, "sender": _user(B), "senderDisplayName": "Bob ☃", "id": "1795891563895",
    "createdOn": "2026-11-28T18:46:03Z", "version": "1795891563895", "sequenceId": "3", "type": "RichText/Html",
    "message": TRICKY, "metadata": {"k": TRICKY},
    "attachments": [{"id": "i1", "attachmentType": "image", "name": "a.png",
                     "url": "https://elsewhere/chat/threads/T/images/i1?x=1"}],
}
PARTICIPANTS = [
    {"id": _user(B), "displayName": "Bob ☃", "shareHistoryTime": "1970-01-01T00:00:00Z"},
    {"id": _user(A), "displayName": TRICKY, "shareHistoryTime": "2026-11-01T00:00:00Z", "metadata": {"m": "1"}},
]
THREAD = {"threadId": T, "version": "1795891563886", "createdOn": "2026-11-28T18:46:03Z",
          "properties": {"topic": TRICKY, "metadata": {"k": "v"}}, "participants": PARTICIPANTS,
          "createdBy": {"id": _user(B)},
          "retentionPolicy": {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}}


def test_every_event_kind_decodes_in_the_sdk() -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("chatMessageReceived", MESSAGE),
        ("chatMessageEdited", {**MESSAGE, "editedOn": "2026-11-28T18:46:04Z"}),
        ("chatMessageDeleted", {**MESSAGE, "deletedOn": "2026-11-28T18:46:05Z"}),
        ("typingIndicatorReceived", {"threadId": T, "sender": _user(B), "senderDisplayName": "Bob",
                                     "receivedOn": "2026-11-28T18:46:03Z", "version": "7"}),
        ("readReceiptReceived", {"threadId": T, "sender": _user(B), "senderDisplayName": "",
                                 "chatMessageId": "1795891563895", "readOn": "2026-11-28T18:46:06Z"}),
        ("chatThreadCreated", THREAD),
        ("chatThreadPropertiesUpdated", {"threadId": T, "version": "9", "properties": {"topic": "new ☃"},
                                         "updatedOn": "2026-11-28T18:46:07Z", "updatedBy": {"id": _user(B)}}),
        ("participantsAdded", {"threadId": T, "version": "10", "addedOn": "2026-11-28T18:46:08Z",
                               "participantsAdded": PARTICIPANTS[1:], "addedBy": {"id": _user(B)}}),
        ("participantsRemoved", {"threadId": T, "version": "11", "removedOn": "2026-11-28T18:46:09Z",
                                 "participantsRemoved": PARTICIPANTS[1:], "removedBy": {"id": _user(B)}}),
        ("chatThreadDeleted", {"threadId": T, "version": "12", "deletedOn": "2026-11-28T18:46:10Z",
                               "deletedBy": {"id": _user(B)}}),
        ("chatThreadDeleted", {"threadId": T, "version": "13", "deletedOn": "2026-11-28T18:46:11Z"}),
    ]
    bodies = []
    for name, data in cases:
        body = notification_body(name, data, A)
        assert body is not None
        bodies.append((name, body))
    results = _decode(bodies)
    assert [r["handled"] for r in results] == [200] * len(cases)
    got = [r["event"] for r in results]

    received = got[0]
    assert received["message"] == TRICKY
    assert received["type"] == "RichText/Html"
    assert received["metadata"] == {"k": TRICKY}
    assert received["senderDisplayName"] == "Bob ☃"
    assert received["recipient"] == _user(A)
    assert received["sender"] == _user(B)
    assert received["createdOn"] == "2026-11-28T18:46:03.000Z"
    assert received["attachments"] == [{"id": "i1", "attachmentType": "image", "name": "a.png",
                                        "url": "https://threadline.test/chat/threads/T/images/i1?api-version=2025-03-15"}]
    assert got[1]["editedOn"] == "2026-11-28T18:46:04.000Z"
    assert got[2]["deletedOn"] == "2026-11-28T18:46:05.000Z"
    assert got[2]["type"] == "RichText/Html"
    assert got[3]["receivedOn"] == "2026-11-28T18:46:03.000Z"
    assert got[4]["readOn"] == "2026-11-28T18:46:06.000Z"
    assert got[4]["chatMessageId"] == "1795891563895"

    created = got[5]
    assert created["properties"] == {"topic": TRICKY, "metadata": {"k": "v"}}
    assert created["retentionPolicy"] == {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}
    assert created["createdBy"] == {"id": _user(B), "displayName": "Bob ☃", "metadata": {}}
    bob, alice = created["participants"]
    assert bob == {"id": _user(B), "displayName": "Bob ☃", "metadata": {}}  # an unset share time stays unset
    assert alice == {"id": _user(A), "displayName": TRICKY, "metadata": {"m": "1"},
                     "shareHistoryTime": "2026-11-01T00:00:00.000Z"}
    assert got[6]["properties"] == {"topic": "new ☃", "metadata": {}}
    assert got[6]["retentionPolicy"] == {"kind": "none"}
    assert got[7]["participantsAdded"] == [alice]
    assert got[8]["participantsRemoved"] == [alice]
    assert got[9]["deletedBy"]["id"] == _user(B)
    assert got[10]["deletedBy"] is None
    assert got[10]["reason"] == "deletedByPolicy"


@pytest.mark.parametrize("raw", ["4:+14255550123", "8:orgid:00000000-0000-0000-0000-000000000001", "28:bot"])
def test_other_identifier_kinds_reach_the_sdk_by_raw_id(raw: str) -> None:
    kind = {"kind": "unknown", "id": raw}
    body = notification_body("typingIndicatorReceived", {"threadId": T, "sender": kind, "version": "1",
                                                         "receivedOn": "2026-11-28T18:46:03Z"}, A)
    assert body is not None
    assert json.loads(body)["senderId"] == raw
    sender = _decode([("typingIndicatorReceived", body)])[0]["event"]["sender"]
    assert raw in json.dumps(sender)
