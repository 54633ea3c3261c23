"""Count-based caps hold under concurrency, on both engines (ACS limits, throttling off).

The participant cap (250 live members) is checked inside the write
transaction, so concurrent adds that each fit on their own cannot together
pass it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from ..conftest import RunningServer
from .helpers import Chat, identifier, make_user, q

CAP = 250


def _members(chat: Chat, thread_id: str) -> list[str]:
    listed = chat.follow(f"/chat/threads/{q(thread_id)}/participants", 200)
    return [p["communicationIdentifier"]["rawId"] for p in listed]


def test_ten_concurrent_adds_of_fifty_never_pass_the_participant_cap(acs_server: RunningServer) -> None:
    owner_user = make_user(acs_server)
    owner = Chat(acs_server.http_endpoint, owner_user.token)
    thread_id = owner.create_thread("crowded", [])
    with ThreadPoolExecutor(8) as pool:
        crowd = list(pool.map(lambda _: make_user(acs_server).id, range(500)))
    batches = [crowd[i * 50:(i + 1) * 50] for i in range(10)]
    path = f"/chat/threads/{q(thread_id)}/participants/:add"

    def add(batch: list[str]) -> requests.Response:
        body: dict[str, Any] = {"participants": [{"communicationIdentifier": identifier(u)} for u in batch]}
        return Chat(acs_server.http_endpoint, owner_user.token).call("POST", path, body)

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(add, batches))

    accepted = [b for b, a in zip(batches, answers, strict=True) if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    # 1 + 4 x 50 = 201 fit; a fifth batch would make 251, whichever order they ran in
    assert len(accepted) == 4, [a.status_code for a in answers]
    for answer in refused:
        assert answer.status_code == 400, answer.text
        assert answer.headers["x-ms-error-code"] == "BadRequest"
        error = answer.json()["error"]
        assert (error["code"], error["target"]) == ("BadRequest", "participants")
        assert f"at most {CAP}" in error["message"]
    members = _members(owner, thread_id)
    assert len(members) == 201
    assert sorted(members) == sorted([owner_user.id, *(u for b in accepted for u in b)])
    added = [m for m in owner.messages(thread_id) if m["type"] == "participantAdded"]
    assert len(added) == 1 + 4  # the creation and one per accepted batch; the refused wrote nothing
