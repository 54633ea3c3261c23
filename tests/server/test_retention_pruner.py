"""The retention pruner end to end, on both engines: a real server whose pruner clock runs
31 days ahead deletes a thread created with a 30-day policy as a user's delete would
(404 afterwards, ``deletedOn`` in the list, ``chatThreadDeleted`` to every member), and
leaves alone the threads whose time has not come.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.realtime.helpers import open_stream, ws_url

from ..conftest import ENGINES, RunningServer, serving
from ..support import User, new_user

V = "2025-03-15"
DAYS_31 = str(31 * 24 * 3600)


def call(server: RunningServer, user: User, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {user.token}", **kw.pop("headers", {})}
    return requests.request(method, f"{server.http_endpoint}{path}?api-version={V}", headers=headers,
                            timeout=10, **kw)


def create(server: RunningServer, user: User, others: list[User], policy: dict[str, Any] | None) -> str:
    body: dict[str, Any] = {"topic": "retained", "participants": [
        {"communicationIdentifier": {"rawId": o.id}, "displayName": "other"} for o in others]}
    if policy is not None:
        body["retentionPolicy"] = policy
    response = call(server, user, "POST", "/chat/threads", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["chatThread"]["id"])


def wait_gone(server: RunningServer, user: User, thread_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while call(server, user, "GET", f"/chat/threads/{thread_id}").status_code != 404:
        assert time.monotonic() < deadline, "the pruner never deleted the thread"
        time.sleep(0.05)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_thread_past_its_retention_is_deleted_as_by_a_user(engine: str, tmp_path: Path) -> None:
    env = {"THREADLINE_THROTTLE": "off", "THREADLINE_RETENTION_CLOCK_SKEW": DAYS_31,
           "THREADLINE_RETENTION_INTERVAL": "0.2"}
    with serving(engine, tmp_path / "data", env=env) as server:
        alice, bob = new_user(server), new_user(server)
        sixty = create(server, alice, [bob], {"kind": "threadCreationDate", "deleteThreadAfterDays": 60})
        forever = create(server, alice, [bob], {"kind": "none"})
        plain = create(server, alice, [bob], None)

        async def main() -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
            a = await open_stream(ws_url(server), alice.token)
            b = await open_stream(ws_url(server), bob.token)
            try:
                doomed = await asyncio.to_thread(
                    create, server, alice, [bob], {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}
                )
                for stream in (a, b):
                    await stream.wait_for(lambda s: any(
                        f["data"]["threadId"] == doomed for f in s.of_type("chatThreadDeleted")), 20)
                # a marker after the deletion: once it arrives, a second deletion event would have too
                sent = await asyncio.to_thread(call, server, alice, "POST", f"/chat/threads/{plain}/messages",
                                               json={"content": "marker"})
                assert sent.status_code == 201
                for stream in (a, b):
                    await stream.wait_type("chatMessageReceived")
                return doomed, a.of_type("chatThreadDeleted"), b.of_type("chatThreadDeleted")
            finally:
                await a.close()
                await b.close()

        doomed, alice_heard, bob_heard = asyncio.run(main())
        for heard, who in ((alice_heard, alice), (bob_heard, bob)):
            assert len(heard) == 1
            data = heard[0]["data"]
            assert data["threadId"] == doomed
            assert data["deletedBy"] == {"id": {"kind": "unknown", "id": "threadline:retentionPolicy"}}
            assert data["recipient"]["communicationUserId"] == who.id
            assert data["deletedOn"].endswith("Z")
        # what a member sees: the thread is gone, as after a user's delete
        for who in (alice, bob):
            response = call(server, who, "GET", f"/chat/threads/{doomed}")
            assert response.status_code == 404 and response.json()["error"]["code"] == "NotFound"
            assert call(server, who, "POST", f"/chat/threads/{doomed}/messages",
                        json={"content": "late"}).status_code == 404
            listed = {t["id"]: t for t in call(server, who, "GET", "/chat/threads").json()["value"]}
            assert "deletedOn" in listed[doomed]
            for kept in (sixty, forever, plain):
                assert "deletedOn" not in listed[kept]
        assert call(server, alice, "DELETE", f"/chat/threads/{doomed}").status_code == 204
        # a PATCH that shortens a kept thread's retention makes it due at once
        shorten = call(server, alice, "PATCH", f"/chat/threads/{sixty}",
                       json={"retentionPolicy": {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert shorten.status_code == 204
        wait_gone(server, bob, sixty)
        for kept in (forever, plain):
            assert call(server, bob, "GET", f"/chat/threads/{kept}").status_code == 200
        metrics = requests.get(f"{server.http_endpoint}/metrics", timeout=10).text
        assert re.search(r"^threadline_retention_deleted_threads_total 2\.0$", metrics, re.M), metrics[-2000:]
