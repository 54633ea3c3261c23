"""The browser notification channel at the protocol level, on both engines (no browser needed).

A Python Trouter client plays the SDK's part; the Chromium tests run the real SDK.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote

import aiohttp
import pytest
import requests

from tests.conftest import ENGINES, RunningServer, serving
from tests.realtime.helpers import make_thread, thread_client
from tests.support import identity_client, new_user
from threadline.identity.tokens import TokenIssuer, derive_signing_key
from threadline.server.realtime.browser.encoding import js_escape
from threadline.server.realtime.browser.frames import decode, decode_payload, encode_payload
from threadline.store import positions
from threadline.store.positions import partition_of

from .nodes import two_nodes
from .trouter import connect, handshake

CONFIG = "/chat/config/realTimeNotifications?api-version=2024-09-01"


def _connected(client: object) -> list[dict[str, object]]:
    """The arguments of every ``trouter.connected`` the client received."""
    packets: list[str] = client.packets  # type: ignore[attr-defined]
    return [json.loads(p[4:])["args"][0] for p in packets if p.startswith('5:::{"name":"trouter.connected"')]


def _ahead(new: str, old: str) -> bool:
    """Whether resume token ``new`` is past ``old`` (no partition behind, one ahead)."""
    a, b = positions.parse(new), positions.parse(old)
    assert isinstance(a, positions.Cursor) and isinstance(b, positions.Cursor)
    return a != b and all(x >= y for x, y in zip(a.after, b.after, strict=True))


def _metric(server: RunningServer, name: str) -> float:
    """One sample of the server's ``/metrics`` (0 when absent)."""
    for line in requests.get(f"{server.http_endpoint}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_config_points_back_at_the_server_as_reached(server: RunningServer) -> None:
    user = new_user(server)
    auth = {"Authorization": f"Bearer {user.token}"}
    direct = requests.get(f"{server.http_endpoint}/{CONFIG}", headers=auth, timeout=10)  # the SDK's "//chat"
    assert direct.status_code == 200
    assert direct.json() == {"trouterServiceUrl": f"{server.http_endpoint}/trouter",
                             "registrarServiceUrl": f"{server.http_endpoint}/registrar", "cloudType": "public"}
    tls = requests.get(f"{server.https_endpoint}{CONFIG}", headers=auth, timeout=10, verify=server.cert_path)
    assert tls.json()["trouterServiceUrl"] == f"{server.https_endpoint}/trouter"
    proxied = requests.get(f"{server.http_endpoint}{CONFIG}", timeout=10, headers={
        **auth, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.com"})
    assert proxied.json()["registrarServiceUrl"] == "https://chat.example.com/registrar"
    bogus = requests.get(f"{server.http_endpoint}{CONFIG}", timeout=10, headers={
        **auth, "X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "evil/host"})
    assert bogus.json()["trouterServiceUrl"] == f"{server.http_endpoint}/trouter"
    anonymous = requests.get(f"{server.http_endpoint}{CONFIG}", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["x-ms-error-code"] == "Unauthorized"
    old = requests.get(f"{server.http_endpoint}/chat/config/realTimeNotifications?api-version=1999-01-01",
                       headers=auth, timeout=10)
    assert old.status_code == 400
    assert old.json()["error"]["code"] == "UnsupportedApiVersion"


def test_every_step_needs_a_valid_token(server: RunningServer) -> None:
    base = server.http_endpoint
    for token in (None, "not-a-token"):
        headers = {"X-Skypetoken": token} if token else {}
        assert requests.post(f"{base}/trouter/v4/a", headers=headers, timeout=10).status_code == 401
        assert requests.post(f"{base}/v4/a", headers=headers, timeout=10).status_code == 401
        assert requests.get(f"{base}/socket.io/1/?v=v4", headers=headers, timeout=10).status_code == 401
        assert requests.post(f"{base}/registrar/v3/registrations", headers=headers, json={},
                             timeout=10).status_code == 401
        assert requests.get(f"{base}/socket.io/1/xhr-polling/{'0' * 32}", headers=headers,
                            timeout=10).status_code == 401
    user = new_user(server)
    ok = {"X-Skypetoken": user.token}
    assert requests.post(f"{base}/registrar/v3/registrations", headers=ok, json={"registrationId": "x"},
                         timeout=10).status_code == 202
    assert requests.delete(f"{base}/registrar/v3/registrations/x", headers=ok, timeout=10).status_code == 200
    assert requests.get(f"{base}/socket.io/1/xhr-polling/{'0' * 32}", headers=ok, timeout=10).status_code == 404
    assert requests.get(f"{base}/?check=1", timeout=10).text == "Trouter"


def test_websocket_session_delivers_answered_notifications(server: RunningServer) -> None:
    alice, bob, carol = new_user(server), new_user(server), new_user(server)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            a = await connect(http, server, alice.token)
            c = await connect(http, server, carol.token)
            connected = json.loads(a.packets[1][4:])["args"][0]
            assert set(connected) >= {"id", "ccid", "url", "surl", "ttl", "connectparams"}
            assert connected["connectparams"]["sr"] == connected["id"]
            await a.ws.send_str('5:1+::{"name":"user.activity","args":[{"state":"active","cv":"x+y"}]}')
            await a.ws.send_str('5:2+::{"name":"ping"}')
            await a.wait_for(lambda cl: '6:::2+[{"status":200}]' in cl.packets)
            assert '6:::1+[{"status":200}]' in a.packets
            thread_id = await asyncio.to_thread(make_thread, server, bob, alice, topic="wire")
            client = thread_client(server, bob, thread_id)
            sent = await asyncio.to_thread(client.send_message, "héllo 😀 %41", sender_display_name="Bob")
            await a.wait_for(lambda cl: bool(cl.bodies(200)))
            body = a.bodies(200)[0]
            assert body["groupId"] == thread_id
            assert body["messageId"] == sent.id
            assert body["messageBody"] == "héllo 😀 %41"
            assert body["senderId"] == bob.id
            assert body["recipientMri"] == alice.id
            assert body["senderDisplayName"] == "Bob"
            assert body["messageType"] == "Text"
            created = a.bodies(257)[0]
            members = json.loads(unquote(created["members"]))
            assert {m["participantId"] for m in members} == {alice.id, bob.id}
            # Carol is in no thread of theirs: a thread of her own is the barrier after which nothing else came.
            own = await asyncio.to_thread(make_thread, server, carol, topic="carol only")
            await c.wait_for(lambda cl: bool(cl.bodies(257)))
            assert [n["threadId"] for n in c.notifications] == [own]
            await a.close()
            await c.close()

    asyncio.run(scenario())


def test_reconnect_resumes_after_the_last_answered_notification(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            a = await connect(http, server, alice.token)
            thread_id = await asyncio.to_thread(make_thread, server, bob, alice, topic="resume")
            client = thread_client(server, bob, thread_id)
            await asyncio.to_thread(client.send_message, "before")
            await a.wait_for(lambda cl: [n.get("messageBody") for n in cl.bodies(200)] == ["before"])
            params = {k: str(v) for k, v in a.allocation["connectparams"].items()}
            # Once "before" is answered, a second trouter.connected moves the client's cached ``pos`` past it.
            await a.wait_for(lambda cl: len(_connected(cl)) >= 2)
            refresh = _connected(a)[-1]["connectparams"]
            assert refresh["sr"] == params["sr"]
            assert _ahead(refresh["pos"], params["pos"])
            # The token travels in the SDK's query string as it is: URL-safe characters only.
            assert re.fullmatch(r"p[0-9a-f]+(\.[0-9a-f]+)*", refresh["pos"]) and len(refresh["pos"]) < 400
            await a.close()
            for text in ("gone 1", "gone 2"):
                await asyncio.to_thread(client.send_message, text)
            again = await connect(http, server, alice.token, params)
            await again.wait_for(lambda cl: len(cl.bodies(200)) >= 2)
            await asyncio.to_thread(client.send_message, "live")
            await again.wait_for(lambda cl: len(cl.bodies(200)) >= 3)
            assert [n["messageBody"] for n in again.bodies(200)] == ["gone 1", "gone 2", "live"]
            assert again.bodies(257) == []  # answered before the reconnect: not delivered twice
            assert again.allocation["connectparams"]["sr"] == params["sr"]
            await again.close()
            # A node that never saw the session (a restart, another node) resumes from the cached ``pos``,
            # which every allocation refreshes to the position answered so far.
            refreshed = {k: str(v) for k, v in again.allocation["connectparams"].items()}
            assert _ahead(refreshed["pos"], params["pos"])
            stale = {**refreshed, "sr": "f" * 32}
            elsewhere = await connect(http, server, alice.token, stale)
            await elsewhere.wait_for(lambda cl: len(cl.bodies(200)) >= 3)
            assert [n["messageBody"] for n in elsewhere.bodies(200)] == ["gone 1", "gone 2", "live"]
            await elsewhere.close()

    asyncio.run(scenario())


def test_revocation_and_deletion_end_the_session(server: RunningServer) -> None:
    revoked, deleted = new_user(server), new_user(server)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            r = await connect(http, server, revoked.token)
            d = await connect(http, server, deleted.token)
            identity = identity_client(server)
            await asyncio.to_thread(identity.revoke_tokens, revoked.identifier)
            await asyncio.to_thread(identity.delete_user, deleted.identifier)
            for session in (r, d):
                await session.wait_for(lambda cl: cl.closed, timeout=20)
                assert session.packets[-1] == '0:::{"reason":"unauthorized"}'
            async with http.post(f"{server.http_endpoint}/trouter/v4/a",
                                 headers={"X-Skypetoken": revoked.token}) as response:
                assert response.status == 401
                assert "www-authenticate" in response.headers

    asyncio.run(scenario())


def test_xhr_polling_transport(server: RunningServer) -> None:
    alice, bob = new_user(server), new_user(server)

    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            headers = {"X-Skypetoken": alice.token}
            sid = await handshake(http, server, alice.token, {})
            url = f"{server.http_endpoint}/socket.io/1/xhr-polling/{sid}"
            async with http.get(url, headers=headers) as first:
                packets = decode_payload(await first.text())
            assert packets[0] == "1::"
            assert packets[1].startswith('5:::{"name":"trouter.connected"')
            async with http.get(url, headers={"X-Skypetoken": bob.token}) as foreign:
                assert foreign.status == 404  # another user's session is not reachable
            thread_id = await asyncio.to_thread(make_thread, server, bob, alice, topic="polling")
            received: list[dict[str, object]] = []
            for _ in range(10):
                async with http.get(url, headers=headers) as poll:
                    assert poll.status == 200
                    for packet in decode_payload(await poll.text()):
                        if packet.startswith("3:::"):
                            request = json.loads(packet[4:])
                            received.append(json.loads(request["body"]))
                            reply = "3:::" + json.dumps({"id": request["id"], "status": 200})
                            async with http.post(url, headers=headers, data=encode_payload([reply, "2::"])) as sent:
                                assert sent.status == 200
                if received:
                    break
            assert received[0]["eventId"] == 257
            assert received[0]["threadId"] == thread_id
            async with http.post(url, headers=headers, data="0::") as bye:
                assert bye.status == 200
            async with http.get(url, headers=headers) as after:
                assert after.status == 404

    asyncio.run(scenario())


def test_websocket_needs_a_handshaken_sid(server: RunningServer) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession() as http:
            ws_base = server.http_endpoint.replace("http://", "ws://")
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{ws_base}/socket.io/1/websocket/{'a' * 32}")
            assert refused.value.status == 403

    asyncio.run(scenario())


def test_js_escape_matches_javascript() -> None:
    sample = "topic %41 é ☃ 😀 \"quoted\" a+b/c@d*e_f-g.h ~!#'()"
    expected = ("topic%20%2541%20%E9%20%u2603%20%uD83D%uDE00%20%22quoted%22%20a+b/c@d*e_f-g.h%20%7E%21%23%27%28%29")
    assert js_escape(sample) == expected
    try:
        node = subprocess.run(["node", "-e", f"process.stdout.write(escape({json.dumps(sample)}))"],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return
    assert node.stdout == expected


def test_packet_grammar() -> None:
    assert decode('5:3+::{"name":"ping"}') is not None
    packet = decode('5:3+::{"name":"ping"}')
    assert packet is not None and (packet.type, packet.id, packet.wants_data, packet.data) == ("5", 3, True,
                                                                                                  '{"name":"ping"}')
    framed = encode_payload(["1::", '3:::{"body":"😀"}'])
    assert framed == '\ufffd3\ufffd1::\ufffd17\ufffd3:::{"body":"😀"}'
    assert decode_payload(framed) == ["1::", '3:::{"body":"😀"}']
    assert decode_payload("2::") == ["2::"]
    assert decode("garbage") is None


@pytest.mark.parametrize("path", ["/socket.io/1/", "/trouter/v4/a"])
def test_preflight_of_the_channel(server: RunningServer, path: str) -> None:
    response = requests.options(server.http_endpoint + path, headers={
        "Origin": "http://page.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-skypetoken,content-type"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


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
                assert _metric(running, 'threadline_browser_session_ends_total{reason="overflow"}') == 1
                assert _metric(running, "threadline_browser_sessions") == 0
                assert len(a.notifications) <= 6
                params = {k: str(v) for k, v in a.allocation["connectparams"].items()}
                again = await connect(http, running, alice.token, params)
                await again.wait_for(lambda cl: len(cl.bodies(200)) >= len(texts))
                assert [n["messageBody"] for n in again.bodies(200)] == texts  # nothing was answered: all again
                assert again.bodies(257)[0]["threadId"] == thread_id
                assert _metric(running, "threadline_browser_sessions") == 1
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
                while await asyncio.to_thread(_metric, running, "threadline_browser_sessions") > 0:
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
                                            for c in _connected(cl)))
            token = str(_connected(b)[-1]["connectparams"]["pos"])
            assert isinstance(positions.parse(token), positions.Cursor)
            await b.close()

    asyncio.run(scenario())
