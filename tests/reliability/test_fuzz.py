"""Generated inputs: the OpenAPI fuzzer (short run), raw-id parsing against the official SDK, paging under writes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from azure.communication.chat import identifier_from_raw_id as official_from_raw_id
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from threadline.chat import identifier_from_raw_id as ours_from_raw_id
from threadline.protocol.ids import parse_raw_id

from ..conftest import ENGINES, RunningServer
from ..pg import fresh_database, require_postgres
from .helpers import Chat, make_user, q, user_messages

ROOT = Path(__file__).resolve().parents[2]


def _fuzz(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--cases", "300", "--seed", "7", "--json"],
        capture_output=True, text=True, timeout=280, env={**os.environ, **(env or {})},
    )


async def _count_users(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM users"))
    finally:
        await conn.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_fuzzing_the_openapi_operations_gives_no_5xx_and_no_hang(engine: str) -> None:
    if engine == "sqlite":
        done = _fuzz()
    else:
        require_postgres()
        with fresh_database("threadline_fuzz") as url:  # the fuzzed server runs on it (THREADLINE_DATABASE)
            done = _fuzz({"THREADLINE_DATABASE": url})
            assert asyncio.run(_count_users(url)) > 0  # the fuzzed server really wrote to PostgreSQL
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["requests"] >= 300
    assert (report["server_errors"], report["hangs"]) == ([], [])
    assert len(report["by_operation"]) == 21  # every Chat and Identity operation was exercised
    statuses = {int(s) for s in report["statuses"]}
    assert {200, 201, 204, 400, 401, 404} <= statuses  # generated requests got past validation too


# -- raw ids ---------------------------------------------------------------------------------------

PREFIXES = [
    "8:acs:", "8:dod-acs:", "8:gcch-acs:", "8:spool:", "4:", "4:+", "8:orgid:", "8:dod:", "8:gcch:",
    "8:teamsvisitor:", "28:orgid:", "28:dod:", "28:gcch:", "28:", "28:dod-global:", "28:gcch-global:",
    "8:", "8:acs", "19:", ":", "", "8:ACS:", "8:orgid", "28:orgid::",
]
raw_ids = st.one_of(
    st.builds(lambda p, rest: p + rest, st.sampled_from(PREFIXES), st.text(max_size=40)),
    st.text(max_size=40),
    st.builds(
        lambda p, rest: p + rest, st.sampled_from(PREFIXES), st.from_regex(r"[0-9a-f:_\-+]{0,30}", fullmatch=True)
    ),
)


def plain(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Properties with enum values as their strings."""
    return {k: getattr(v, "value", v) for k, v in properties.items()}


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_ids)
def test_parse_raw_id_agrees_with_the_official_sdk(raw: str) -> None:
    official = official_from_raw_id(raw)
    parsed = parse_raw_id(raw)
    assert parsed.raw_id == official.raw_id == raw
    assert parsed.kind == official.kind.value
    expected = plain(official.properties)
    if parsed.kind == "unknown":
        # the protocol layer names the raw id; the SDK class keeps it only as raw_id
        assert (parsed.properties, expected) == ({"identifier": raw}, {})
        return
    mine = dict(parsed.properties)
    if mine.get("cloud", "") is None:
        # no cloud in the raw id (anonymous Teams visitors): the SDK classes default to PUBLIC
        mine["cloud"] = "PUBLIC"
    assert mine == expected


@settings(max_examples=3000, deadline=None)  # a stalled machine is not a failure of parsing
@given(raw_ids)
def test_our_sdk_builds_the_same_identifiers_as_the_official_one(raw: str) -> None:
    official = official_from_raw_id(raw)
    ours = ours_from_raw_id(raw)
    assert (ours.kind.value, ours.raw_id) == (official.kind.value, official.raw_id)
    assert plain(dict(ours.properties)) == plain(dict(official.properties))


# -- paging while writes continue ------------------------------------------------------------------


@pytest.fixture(scope="module")
def writer(open_server: RunningServer) -> Chat:
    return Chat(open_server.http_endpoint, make_user(open_server).token)


def pages(chat: Chat, path: str, size: int, between: Any) -> list[dict[str, Any]]:
    """Follow a list page by page, calling ``between(page_number)`` before each next page."""
    items: list[dict[str, Any]] = []
    answer = chat.call("GET", path, params={"maxPageSize": size})
    number = 0
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["value"]) <= size
        items += page["value"]
        if not page.get("nextLink"):
            return items
        number += 1
        between(number)
        answer = chat.session.get(chat.base + page["nextLink"], headers={"Authorization": f"Bearer {chat.token}"},
                                  timeout=30)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(existing=st.integers(1, 40), size=st.integers(1, 7), writes=st.lists(st.integers(0, 4), max_size=12),
       deletes=st.lists(st.integers(0, 39), max_size=5))
def test_message_pages_hold_every_message_once_while_messages_arrive(
    writer: Chat, existing: int, size: int, writes: list[int], deletes: list[int]
) -> None:
    alice = writer
    thread_id = alice.create_thread("paging", [])
    before = [alice.send(thread_id, f"old {n}") for n in range(existing)]
    arrived: list[str] = []

    def write(page: int) -> None:
        count = writes[page - 1] if page - 1 < len(writes) else 0
        arrived.extend(alice.send(thread_id, f"new {page}.{n}") for n in range(count))
        if page - 1 < len(deletes) and deletes[page - 1] < existing:
            alice.call("DELETE", f"/chat/threads/{q(thread_id)}/messages/{before[deletes[page - 1]]}")

    listed = pages(alice, f"/chat/threads/{q(thread_id)}/messages", size, write)
    ids = [m["id"] for m in listed]
    assert len(ids) == len(set(ids))  # nothing twice
    assert set(before) <= set(ids)  # everything that existed, deleted ones as tombstones
    assert set(ids) - set(before) - {m["id"] for m in alice.messages(thread_id) if m["type"] != "text"} <= set(
        arrived)
    sequence = [int(m["sequenceId"]) for m in listed]
    assert sequence == sorted(sequence, reverse=True)  # newest first, across pages
    assert len(user_messages(alice.messages(thread_id))) == existing + len(arrived)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(existing=st.integers(1, 15), size=st.integers(1, 5), new_threads=st.lists(st.integers(0, 2), max_size=8),
       bumps=st.lists(st.integers(0, 14), max_size=8))
def test_thread_pages_hold_each_thread_at_most_once_and_every_quiet_one(
    open_server: RunningServer, existing: int, size: int, new_threads: list[int], bumps: list[int]
) -> None:
    owner = Chat(open_server.http_endpoint, make_user(open_server).token)
    before = [owner.create_thread(f"t{n}", []) for n in range(existing)]
    created: list[str] = []
    bumped: set[str] = set()

    def write(page: int) -> None:
        count = new_threads[page - 1] if page - 1 < len(new_threads) else 0
        created.extend(owner.create_thread(f"new {page}.{n}", []) for n in range(count))
        if page - 1 < len(bumps) and bumps[page - 1] < existing:
            target = before[bumps[page - 1]]
            owner.send(target, "activity")  # moves the thread to the front of the list
            bumped.add(target)

    ids = [t["id"] for t in pages(owner, "/chat/threads", size, write)]
    assert len(ids) == len(set(ids))  # a thread never shows twice, even when its activity moves it
    assert set(before) - bumped <= set(ids)  # every thread without new activity is listed
    assert set(ids) <= set(before) | set(created)
