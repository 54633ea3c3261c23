"""Browser notification sessions over time, on both engines (no browser needed): resume across nodes and
restarts, slow clients, expiry, revocation, removal, lost history and the per-user cap.

A Python Trouter client plays the SDK's part; the Chromium tests run the real SDK.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest

from tests.conftest import ENGINES, RunningServer, serving
from tests.realtime.helpers import make_thread, thread_client
from tests.support import new_user
from threadline.identity.tokens import TokenIssuer, derive_signing_key
from threadline.store import positions
from threadline.store.positions import partition_of

from .nodes import two_nodes
from .trouter import connect, connected_args, handshake, metric


def test_sessions_on_two_nodes_hear_each_other_and_resume_elsewhere(tmp_path: Path) -> None:
    with two_nodes(tmp_path) as (one, two):
        alice, bob = new_user(one), new_user(two)

        async def scenario() -> None:
            async with aiohttp.ClientSession() as http:
                a = await connect(http, one, alice.token)
                b = await connect(http, two, bob.token)
                thread_id = await asyncio.to_thread(make_thread, two, bob, alice, topic="nodes")
                await asyncio.to_thread(thread_client(two, bob, thread_id).send_message, "from node 2")
                await asyncio.to_thread(thread_client(one, alice, thread_id).send_message, "from node 1")
                for client in (a, b):
                    await client.wait_for(lambda cl: len(cl.bodies(200)) >= 2)
                    assert [n["messageBody"] for n in client.bodies(200)] == ["from node 2", "from node 1"]
                params = {k: str(v) for k, v in a.allocation["connectparams"].items()}
                await a.close()
                await asyncio.to_thread(thread_client(two, bob, thread_id).send_message, "while away")
                moved = await connect(http, two, alice.token, params)  # node 2 never saw this session
                await moved.wait_for(lambda cl: any(n.get("messageBody") == "while away" for n in cl.bodies(200)))
                assert [n["messageBody"] for n in moved.bodies(200)][-1] == "while away"
                await moved.close()
                await b.close()

        asyncio.run(scenario())


@pytest.mark.parametrize("engine", ENGINES)
def test_a_client_that_stops_answering_is_bounded_then_resumes(engine: str, tmp_path: Path) -> None:
    env = {"THREADLINE_THROTTLE": "off", "THREADLINE_BROWSER_QUEUE": "5", "THREADLINE_BROWSER_HEARTBEAT": "0.5"}
    with serving(engine, tmp_path / "data", env=env) as running:
        alice, bob = new_user(running), new_user(running)

        async def scenario() -> None:
            async with aiohttp.ClientSession() as http:
                a = await connect(http, running, alice.token)
                await a.wait_for(lambda cl: "2::" in cl.packets)  # the server's heartbeat
                a.answer = False
                thread_id = await asyncio.to_thread(make_thread, running, bob, alice, topic="bounded")
                client = thread_client(running, bob, thread_id)
                texts = [f"m{i}" for i in range(6)]
                for text in texts:
                    await asyncio.to_thread(client.send_message, text)
                await a.wait_for(lambda cl: cl.closed)
                assert a.packets[-1] == "0::"
                assert metric(running, 'threadline_browser_session_ends_total{reason="overflow"}') == 1
                assert metric(running, "threadline_browser_sessions") == 0
                assert len(a.notifications) <= 6
                params = {k: str(v) for k, v in a.allocation["connectparams"].items()}
                again = await connect(http, running, alice.token, params)
                await again.wait_for(lambda cl: len(cl.bodies(200)) >= len(texts))
                assert [n["messageBody"] for n in again.bodies(200)] == texts  # nothing was answered: all again
                assert again.bodies(257)[0]["threadId"] == thread_id
                assert metric(running, "threadline_browser_sessions") == 1
                await again.close()

        asyncio.run(scenario())


def test_an_expiring_token_ends_the_session(server: RunningServer) -> None:
    user = new_user(server)
    issuer = TokenIssuer(derive_signing_key(base64.b64decode(server.access_key)), server.resource_id)
    token, expires = issuer.issue(user.id, ["chat"], 60, 0, now=time.time() - 3600 + 4)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            session = await connect(http, server, token)
            await session.wait_for(lambda cl: cl.closed, timeout=15)
            assert time.time() >= expires
            assert session.packets[-1] == '0:::{"reason":"unauthorized"}'
            async with http.post(f"{server.http_endpoint}/trouter/v4/a", headers={"X-Skypetoken": token}) as again:
                assert again.status == 401

    asyncio.run(scenario())


@pytest.mark.parametrize("engine", ENGINES)
def test_sigterm_tells_browser_sessions_to_reconnect(engine: str, tmp_path: Path) -> None:
    with serving(engine, tmp_path / "data", env={"THREADLINE_THROTTLE": "off"}) as running:
        user = new_user(running)

        async def scenario() -> None:
            async with aiohttp.ClientSession() as http:
                session = await connect(http, running, user.token)
                await asyncio.to_thread(running.stop)
                await session.wait_for(lambda cl: cl.closed, timeout=15)
                assert session.packets[-1] == "0::"

        asyncio.run(scenario())


def test_a_removed_member_hears_its_removal_and_nothing_after(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            a = await connect(http, server, alice.token)
            thread_id = await asyncio.to_thread(make_thread, server, bob, alice, topic="members")
            client = thread_client(server, bob, thread_id)
            await asyncio.to_thread(client.send_message, "while a member")
            await asyncio.to_thread(client.remove_participant, alice.identifier)
            await asyncio.to_thread(client.send_message, "after the removal")
            await asyncio.to_thread(client.update_topic, "renamed after the removal")
            # Events are ordered per partition: a replay reaches a barrier in another partition before
            # (or after) this thread's events, so the barrier is a thread of the same partition.
            partitions = len(str(a.allocation["connectparams"]["pos"])[1:].split("."))
            home = partition_of(thread_id, partitions)
            for _ in range(20 * partitions):
                barrier = await asyncio.to_thread(make_thread, server, bob, alice, topic="barrier")
                if partition_of(barrier, partitions) == home:
                    break
            assert partition_of(barrier, partitions) == home
            await a.wait_for(lambda cl: any(n.get("threadId") == barrier for n in cl.bodies(257)))
            seen = [(n["eventId"], n.get("messageBody")) for n in a.notifications
                    if n.get("groupId", n.get("threadId")) == thread_id]
            assert seen == [(257, None), (200, "while a member"), (261, None)]
            removed = json.loads(unquote(a.bodies(261)[0]["participantsRemoved"]))
            assert [p["participantId"] for p in removed] == [alice.id]
            params = {k: str(v) for k, v in a.allocation["connectparams"].items()}
            await a.close()
            replay = await connect(http, server, alice.token, {**params, "sr": "e" * 32})  # a replay from the log
            await replay.wait_for(lambda cl: any(n.get("threadId") == barrier for n in cl.bodies(257)))
            assert [n["eventId"] for n in replay.notifications
                    if n.get("groupId", n.get("threadId")) == thread_id] == [257, 200, 261]
            await replay.close()

    asyncio.run(scenario())


def test_resuming_before_the_kept_log_reports_message_loss(start_server) -> None:  # type: ignore[no-untyped-def]
    running: RunningServer = start_server(env={"THREADLINE_THROTTLE": "off", "THREADLINE_EVENT_RETENTION": "1"})
    alice, bob = new_user(running), new_user(running)
    thread_id = make_thread(running, alice, bob)
    alices = thread_client(running, alice, thread_id)
    for i in range(3):
        alices.send_message(f"old {i}")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 15
            probe = await connect(http, running, bob.token)
            count = len(str(probe.allocation["connectparams"]["pos"]).split("."))
            await probe.close()
            first = "p" + ".".join(["0"] * count)  # before the first event of every partition
            while True:  # the pruner runs every second with a one-second retention: wait until it took all
                fresh = secrets.token_hex(16)  # a session this node never saw, resuming from the start
                b = await connect(http, running, bob.token, {"sr": fresh, "pos": first})
                await b.wait_for(lambda cl: any("trouter.message_loss" in p for p in cl.packets) or
                                 len(cl.notifications) >= 3, timeout=10)
                if (any("trouter.message_loss" in p for p in b.packets) and not b.notifications) \
                        or time.monotonic() > deadline:
                    break
                await b.close()
                # The server drops the session when it reads the client's ``0::``, a moment after the close
                # handshake: wait for that, or the loop would outrun the per-user session cap.
                while await asyncio.to_thread(metric, running, "threadline_browser_sessions") > 0:
                    assert time.monotonic() < deadline + 10, "a closed session was never dropped"
                    await asyncio.sleep(0.02)
            loss = next(p for p in b.packets if "trouter.message_loss" in p)
            assert json.loads(loss[4:])["args"][0]["droppedIndicators"][0]["etag"] == first
            assert b.notifications == []
            await asyncio.to_thread(alices.send_message, "new")
            await b.wait_for(lambda cl: bool(cl.bodies(200)))
            assert [n["messageBody"] for n in b.bodies(200)] == ["new"]
            await b.close()

    asyncio.run(scenario())


def test_sessions_per_user_are_capped_and_a_replaced_session_is_told(server: RunningServer) -> None:
    user, other = new_user(server), new_user(server)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            first = await connect(http, server, user.token)
            params = {k: str(v) for k, v in first.allocation["connectparams"].items()}
            second = await connect(http, server, user.token, params)  # the same client session, reconnecting
            await first.wait_for(lambda cl: cl.closed)
            assert first.packets[-1] == "0:::dup"
            assert not second.closed
            for _ in range(31):  # 32 in all with ``second``
                await handshake(http, server, user.token, {})
            async with http.get(f"{server.http_endpoint}/socket.io/1/?v=v4",
                                headers={"X-Skypetoken": user.token}) as refused:
                assert refused.status == 429
            await handshake(http, server, other.token, {})  # other users are not affected
            await second.close()
            # A closed session frees its place once the server has read the client's ``0::``.
            deadline = time.monotonic() + 10
            while True:
                async with http.get(f"{server.http_endpoint}/socket.io/1/?v=v4",
                                    headers={"X-Skypetoken": user.token}) as again:
                    if again.status == 200 or time.monotonic() > deadline:
                        assert again.status == 200
                        break
                await asyncio.sleep(0.02)

    asyncio.run(scenario())


def test_an_old_integer_position_is_refused_as_message_loss(server: RunningServer) -> None:
    """A cached ``pos`` from before resume tokens (a global integer) is never misread as a token."""
    alice, bob = new_user(server), new_user(server)
    thread_id = make_thread(server, alice, bob, topic="legacy pos")
    alices = thread_client(server, alice, thread_id)
    alices.send_message("kept")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            b = await connect(http, server, bob.token, {"sr": secrets.token_hex(16), "pos": "3"})
            await b.wait_for(lambda cl: any("trouter.message_loss" in p for p in cl.packets))
            loss = next(p for p in b.packets if "trouter.message_loss" in p)
            assert json.loads(loss[4:])["args"][0]["droppedIndicators"][0]["etag"] == "3"
            # As the native channel: everything kept is replayed, then the client gets a real token.
            await b.wait_for(lambda cl: "kept" in [n.get("messageBody") for n in cl.bodies(200)])
            await b.wait_for(lambda cl: any(str(c["connectparams"].get("pos", "")).startswith("p")
                                            for c in connected_args(cl)))
            token = str(connected_args(b)[-1]["connectparams"]["pos"])
            assert isinstance(positions.parse(token), positions.Cursor)
            await b.close()

    asyncio.run(scenario())
