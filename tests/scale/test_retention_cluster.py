"""The retention pruner on two nodes sharing one PostgreSQL database: both prune every 0.1 s,
yet each expired thread is deleted, and announced, exactly once, and the members connected
to either node are told.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
import requests

from ..realtime.helpers import RawStream, open_stream, ws_url
from .conftest import Cluster
from .test_cluster import new_user

V = "2025-03-15"
THIRTY = {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}


def _deleted(stream: RawStream, thread_ids: set[str]) -> list[str]:
    return [f["data"]["threadId"] for f in stream.of_type("chatThreadDeleted") if f["data"]["threadId"] in thread_ids]


def test_two_nodes_delete_each_expired_thread_once_and_tell_every_node(
    cluster: Callable[..., Cluster], postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADLINE_RETENTION_CLOCK_SKEW", str(31 * 24 * 3600))
    monkeypatch.setenv("THREADLINE_RETENTION_INTERVAL", "0.1")
    pair = cluster(2)
    one, two = pair.nodes
    alice, bob = new_user(pair, one), new_user(pair, two)
    members = [{"communicationIdentifier": {"rawId": bob.id}}]

    def create(policy: dict[str, Any], node_index: int) -> str:
        node = pair.nodes[node_index]
        response = requests.post(
            f"{node.http_endpoint}/chat/threads?api-version={V}", timeout=10,
            headers={"Authorization": f"Bearer {alice.token}"},
            json={"topic": "expiring", "participants": members, "retentionPolicy": policy},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["chatThread"]["id"])

    kept = create({"kind": "threadCreationDate", "deleteThreadAfterDays": 90}, 0)

    async def main() -> tuple[set[str], list[str], list[str]]:
        on_one = await open_stream(ws_url(one), alice.token)
        on_two = await open_stream(ws_url(two), bob.token)
        try:
            doomed = set(await asyncio.gather(*(asyncio.to_thread(create, THIRTY, n % 2) for n in range(8))))
            for stream in (on_one, on_two):
                await stream.wait_for(lambda s: set(_deleted(s, doomed)) == doomed, 30)
            # a marker written after every deletion: once both streams have it, a duplicate would have arrived
            sent = await asyncio.to_thread(
                requests.post, f"{two.http_endpoint}/chat/threads/{kept}/messages?api-version={V}",
                json={"content": "marker"}, headers={"Authorization": f"Bearer {bob.token}"}, timeout=10,
            )
            assert sent.status_code == 201
            for stream in (on_one, on_two):
                await stream.wait_type("chatMessageReceived")
            return doomed, _deleted(on_one, doomed), _deleted(on_two, doomed)
        finally:
            await on_one.close()
            await on_two.close()

    doomed, heard_on_one, heard_on_two = asyncio.run(main())
    assert sorted(heard_on_one) == sorted(doomed), "alice (node one) told once per thread"
    assert sorted(heard_on_two) == sorted(doomed), "bob (node two) told once per thread"

    async def stored() -> tuple[int, int]:
        conn = await asyncpg.connect(postgres_url)
        try:
            events = await conn.fetchval(
                "SELECT count(*) FROM events WHERE type = 'chatThreadDeleted' AND thread_id = ANY($1)", list(doomed)
            )
            live = await conn.fetchval("SELECT count(*) FROM threads WHERE id = ANY($1) AND deleted_ms IS NULL",
                                       list(doomed))
            return int(events), int(live)
        finally:
            await conn.close()

    assert asyncio.run(stored()) == (len(doomed), 0)
    for node in (one, two):
        got = requests.get(f"{node.http_endpoint}/chat/threads/{kept}?api-version={V}", timeout=10,
                           headers={"Authorization": f"Bearer {bob.token}"})
        assert got.status_code == 200 and got.json()["retentionPolicy"]["deleteThreadAfterDays"] == 90
