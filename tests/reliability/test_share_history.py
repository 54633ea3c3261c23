"""The share-history matrix: every read path keeps a member's history window, on both engines.

A thread holds two messages older than a late joiner's ``shareHistoryTime``
(``old_edit``, then edited, and ``old_delete``, then deleted) and a read
receipt naming ``old_edit`` sent after the late joiner came in; then a
newer message ``new`` and a receipt naming it. A "future" member was added
with a share time in 2100, so nothing written so far is in its window.

Each read path is one case: HTTP get / list messages, list read receipts,
sending a receipt for a hidden message, the real-time stream live and the
real-time replay (``?after=``). Nothing of a message outside the caller's
window may come back on any of them; the owner (whole history) is the
control that the events and rows exist.

The second half covers re-adding members: a live member re-added (by itself
or by another member) keeps its window, display name and metadata, with no
system message and no event; a member who left and is added again is a new
join with the new window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import requests

from threadline.protocol.times import format_ms

from ..conftest import RunningServer
from ..realtime.helpers import RawStream, open_stream, ws_url
from .helpers import Chat, ChatUser, identifier, make_user, q

NEW_API = "2025-03-15"  # participant metadata is on the wire from this version
MERGE = {"Content-Type": "application/merge-patch+json"}
FUTURE = "2100-01-01T00:00:00Z"

#: The fields of an event that name a message.
MESSAGE_FIELDS = ("id", "chatMessageId")


def wait_past(ms: int) -> None:
    """Wait until the wall clock (shared with the server on loopback) is past ``ms``."""
    deadline = time.monotonic() + 5
    while time.time() * 1000 <= ms:
        assert time.monotonic() < deadline, "the clock did not advance"
        time.sleep(0.01)


def named_messages(frames: list[dict[str, Any]]) -> set[str]:
    """Every message id an event frame names."""
    return {str(f["data"][k]) for f in frames if "data" in f for k in MESSAGE_FIELDS if k in f["data"]}


def event_types(frames: list[dict[str, Any]]) -> list[str]:
    return [f["type"] for f in frames if "data" in f]


@dataclass
class Outcome:
    """What every caller saw on every read path, gathered once per engine."""

    owner: ChatUser
    late: ChatUser
    future: ChatUser
    thread_id: str
    hidden: set[str]
    new: str
    cutoff_ms: int
    live: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replay: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _thread(thread_id: str) -> str:
    return f"/chat/threads/{q(thread_id)}"


def _cutoff_after(message_ids: list[str]) -> int:
    """A whole-second share time after the given messages (an id is epoch ms, at or after its creation)."""
    return (max(int(mid) for mid in message_ids) // 1000 + 1) * 1000


def _add(chat: Chat, thread_id: str, user: ChatUser, share: str | None, **extra: Any) -> requests.Response:
    entry: dict[str, Any] = {"communicationIdentifier": identifier(user.id), **extra}
    if share is not None:
        entry["shareHistoryTime"] = share
    return chat.call("POST", f"{_thread(thread_id)}/participants/:add", {"participants": [entry]}, version=NEW_API)


async def _gather(server: RunningServer, world: Outcome, owner: Chat, member: Chat) -> None:
    url = ws_url(server)
    streams = {
        "owner": await open_stream(url, world.owner.token),
        "late": await open_stream(url, world.late.token),
        "future": await open_stream(url, world.future.token),
    }
    start = streams["late"].frames[0]["position"]
    path = _thread(world.thread_id)
    old_edit, old_delete = sorted(world.hidden)

    def writes() -> None:
        edit = owner.call("PATCH", f"{path}/messages/{old_edit}", {"content": "edited secret"}, headers=MERGE)
        assert edit.status_code == 204, edit.text
        assert owner.call("DELETE", f"{path}/messages/{old_delete}").status_code == 204
        receipt = member.call("POST", f"{path}/readReceipts", {"chatMessageId": old_edit})
        assert receipt.status_code == 200, receipt.text
        world.new = owner.send(world.thread_id, "new")
        assert owner.call("POST", f"{path}/readReceipts", {"chatMessageId": world.new}).status_code == 200
        # the last event: a thread-level change every member hears, so its arrival ends the wait
        retitle = owner.call("PATCH", path, {"topic": "done"}, headers=MERGE)
        assert retitle.status_code == 204, retitle.text

    await asyncio.to_thread(writes)
    for name, stream in streams.items():
        await stream.wait_type("chatThreadPropertiesUpdated")
        world.live[name] = list(stream.frames)
        await stream.close()
    for name, user in (("owner", world.owner), ("late", world.late), ("future", world.future)):
        replay = await open_stream(ws_url(server, f"after={start}"), user.token)
        world.replay[name] = [f for f in replay.frames if "data" in f]
        await replay.close()


@pytest.fixture(scope="module")
def outcome(open_server: RunningServer) -> Iterator[Outcome]:
    server = open_server
    owner_user, member_user, late, future = (make_user(server) for _ in range(4))
    owner, member = Chat(server.http_endpoint, owner_user.token), Chat(server.http_endpoint, member_user.token)
    thread_id = owner.create_thread("history", [member_user.id])
    hidden = [owner.send(thread_id, "old secret to edit"), owner.send(thread_id, "old secret to delete")]
    cutoff = _cutoff_after(hidden)
    wait_past(cutoff)
    assert _add(owner, thread_id, late, format_ms(cutoff)).status_code == 201
    assert _add(owner, thread_id, future, FUTURE).status_code == 201
    world = Outcome(owner_user, late, future, thread_id, set(hidden), "", cutoff)
    asyncio.run(_gather(server, world, owner, member))
    yield world


def _caller(server: RunningServer, user: ChatUser) -> Chat:
    return Chat(server.http_endpoint, user.token)


# -- HTTP read paths --------------------------------------------------------------------------------


def test_get_message_outside_the_window_is_404(open_server: RunningServer, outcome: Outcome) -> None:
    late = _caller(open_server, outcome.late)
    for mid in outcome.hidden:
        answer = late.call("GET", f"{_thread(outcome.thread_id)}/messages/{mid}")
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "NotFound"
    assert late.call("GET", f"{_thread(outcome.thread_id)}/messages/{outcome.new}").status_code == 200
    future = _caller(open_server, outcome.future)
    assert future.call("GET", f"{_thread(outcome.thread_id)}/messages/{outcome.new}").status_code == 404


def test_list_messages_keeps_to_the_window(open_server: RunningServer, outcome: Outcome) -> None:
    owner_ids = {m["id"] for m in _caller(open_server, outcome.owner).messages(outcome.thread_id)}
    assert outcome.hidden | {outcome.new} <= owner_ids
    late_ids = {m["id"] for m in _caller(open_server, outcome.late).messages(outcome.thread_id)}
    assert outcome.new in late_ids and not late_ids & outcome.hidden
    future = _caller(open_server, outcome.future).messages(outcome.thread_id)
    assert future == []


def test_list_read_receipts_keeps_to_the_window(open_server: RunningServer, outcome: Outcome) -> None:
    path = _thread(outcome.thread_id) + "/readReceipts"
    owner_sees = {r["chatMessageId"] for r in _caller(open_server, outcome.owner).follow(path, 200)}
    assert owner_sees == {sorted(outcome.hidden)[0], outcome.new}
    late_sees = [r["chatMessageId"] for r in _caller(open_server, outcome.late).follow(path, 200)]
    assert late_sees == [outcome.new]
    assert _caller(open_server, outcome.future).follow(path, 200) == []


def test_a_receipt_for_a_message_outside_the_window_is_404(open_server: RunningServer, outcome: Outcome) -> None:
    late = _caller(open_server, outcome.late)
    for mid in outcome.hidden:
        answer = late.call("POST", _thread(outcome.thread_id) + "/readReceipts", {"chatMessageId": mid})
        assert answer.status_code == 404, answer.text


def test_the_thread_list_names_no_time_outside_the_window(open_server: RunningServer, outcome: Outcome) -> None:
    """``lastMessageReceivedOn`` is the last message the caller may read, else the thread's creation (which
    ``get_thread`` shows every member): a member whose window starts later learns nothing of the hidden
    messages' times, from the field or from ``startTime`` (docs/design.md has the reasoning)."""
    owner = _caller(open_server, outcome.owner)
    created = owner.call("GET", _thread(outcome.thread_id)).json()["createdOn"]

    def listed(user: ChatUser, **params: str) -> list[str]:
        answer = _caller(open_server, user).call("GET", "/chat/threads", params=params)
        assert answer.status_code == 200, answer.text
        return [t["lastMessageReceivedOn"] for t in answer.json()["value"] if t["id"] == outcome.thread_id]

    [last] = listed(outcome.owner)
    assert last > created  # the retitle at the end of the writes, a message every window after cutoff holds
    assert listed(outcome.late) == [last]
    assert listed(outcome.future) == [created]
    after_creation = format_ms((int(datetime.fromisoformat(created).timestamp()) + 1) * 1000)
    assert listed(outcome.owner, startTime=after_creation) == [last]
    assert listed(outcome.future, startTime=after_creation) == []


# -- real-time --------------------------------------------------------------------------------------


def test_the_owner_hears_every_event_live_and_on_replay(outcome: Outcome) -> None:
    """The control: the events the others must not get exist on both paths."""
    expected = ["chatMessageEdited", "chatMessageDeleted", "readReceiptReceived", "chatMessageReceived",
                "readReceiptReceived", "chatThreadPropertiesUpdated"]
    assert event_types(outcome.live["owner"]) == expected
    assert event_types(outcome.replay["owner"]) == expected
    assert named_messages(outcome.live["owner"]) == outcome.hidden | {outcome.new}


@pytest.mark.parametrize("path", ["live", "replay"])
def test_real_time_keeps_to_the_window(outcome: Outcome, path: str) -> None:
    frames = outcome.live if path == "live" else outcome.replay
    late = frames["late"]
    assert event_types(late) == ["chatMessageReceived", "readReceiptReceived", "chatThreadPropertiesUpdated"]
    assert named_messages(late) == {outcome.new}
    assert not any("secret" in str(f) for f in late)
    future = frames["future"]
    assert event_types(future) == ["chatThreadPropertiesUpdated"]
    assert named_messages(future) == set()


# -- re-adding members ------------------------------------------------------------------------------


@dataclass
class Room:
    server: RunningServer
    owner: Chat
    member: ChatUser
    late: ChatUser
    thread_id: str
    old: str
    cutoff_ms: int

    def participants(self) -> dict[str, dict[str, Any]]:
        listed = self.owner.call("GET", _thread(self.thread_id) + "/participants", version=NEW_API)
        assert listed.status_code == 200, listed.text
        return {p["communicationIdentifier"]["rawId"]: p for p in listed.json()["value"]}

    def system_messages(self) -> list[str]:
        return [m["id"] for m in self.owner.messages(self.thread_id) if m["type"] == "participantAdded"]


@pytest.fixture
def room(open_server: RunningServer) -> Room:
    owner_user, member, late = (make_user(open_server) for _ in range(3))
    owner = Chat(open_server.http_endpoint, owner_user.token)
    thread_id = owner.create_thread("re-add", [member.id])
    old = owner.send(thread_id, "before the late one")
    cutoff = _cutoff_after([old])
    wait_past(cutoff)
    added = _add(owner, thread_id, late, format_ms(cutoff), displayName="Late", metadata={"k": "v"})
    assert added.status_code == 201, added.text
    return Room(open_server, owner, member, late, thread_id, old, cutoff)


def _readd_changes_nothing(room: Room, by: Chat, target: ChatUser, share: str) -> None:
    before = room.participants()
    system = room.system_messages()

    async def run() -> RawStream:
        stream = await open_stream(ws_url(room.server), target.token)
        answer = await asyncio.to_thread(
            _add, by, room.thread_id, target, share, displayName="Renamed", metadata={"evil": "yes"}
        )
        assert (answer.status_code, answer.json()) == (201, {}), answer.text
        await asyncio.to_thread(room.owner.send, room.thread_id, "after the re-add")
        await stream.wait_type("chatMessageReceived")
        await stream.close()
        return stream

    stream = asyncio.run(run())
    assert event_types(stream.frames) == ["chatMessageReceived"]  # no participantsAdded
    assert room.participants() == before
    assert room.system_messages() == system


def test_a_member_re_adding_itself_with_an_earlier_time_gains_no_history(room: Room) -> None:
    late = Chat(room.server.http_endpoint, room.late.token)
    _readd_changes_nothing(room, late, room.late, "1970-01-01T00:00:00Z")
    entry = room.participants()[room.late.id]
    assert (entry["shareHistoryTime"], entry["displayName"], entry["metadata"]) == (
        format_ms(room.cutoff_ms), "Late", {"k": "v"})
    assert late.call("GET", f"{_thread(room.thread_id)}/messages/{room.old}").status_code == 404
    assert room.old not in {m["id"] for m in late.messages(room.thread_id)}


def test_re_adding_another_member_with_a_future_time_blanks_nothing(room: Room) -> None:
    late = Chat(room.server.http_endpoint, room.late.token)
    _readd_changes_nothing(room, late, room.member, FUTURE)
    member = Chat(room.server.http_endpoint, room.member.token)
    assert member.call("GET", f"{_thread(room.thread_id)}/messages/{room.old}").status_code == 200
    assert room.old in {m["id"] for m in member.messages(room.thread_id)}
    assert room.participants()[room.member.id]["shareHistoryTime"] == format_ms(0)


def test_a_member_who_left_and_is_added_again_is_a_new_join(room: Room) -> None:
    member = Chat(room.server.http_endpoint, room.member.token)
    path = _thread(room.thread_id)
    assert member.call("GET", f"{path}/messages/{room.old}").status_code == 200  # whole history at first
    assert member.call("POST", path + "/participants/:remove", identifier(room.member.id)).status_code == 204
    system = room.system_messages()
    again = _add(room.owner, room.thread_id, room.member, format_ms(room.cutoff_ms), displayName="Back")
    assert (again.status_code, again.json()) == (201, {}), again.text
    entry = room.participants()[room.member.id]
    assert (entry["shareHistoryTime"], entry["displayName"]) == (format_ms(room.cutoff_ms), "Back")
    assert len(room.system_messages()) == len(system) + 1  # announced as a join
    # the new window applies; the earlier whole-history window is not restored
    assert member.call("GET", f"{path}/messages/{room.old}").status_code == 404
    assert room.old not in {m["id"] for m in member.messages(room.thread_id)}
