"""The browser notification channel at the protocol level, on both engines (no browser needed).

A Python Trouter client plays the SDK's part; the Chromium tests run the real SDK.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from urllib.parse import unquote

import aiohttp
import pytest
import requests

from tests.conftest import RunningServer
from tests.realtime.helpers import make_thread, thread_client
from tests.support import identity_client, new_user
from threadline.server.realtime.browser.encoding import js_escape
from threadline.server.realtime.browser.frames import decode, decode_payload, encode_payload

from .trouter import ahead, connect, connected_args, handshake

CONFIG = "/chat/config/realTimeNotifications?api-version=2024-09-01"


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
            await a.wait_for(lambda cl: len(connected_args(cl)) >= 2)
            refresh = connected_args(a)[-1]["connectparams"]
            assert refresh["sr"] == params["sr"]
            assert ahead(refresh["pos"], params["pos"])
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
            assert ahead(refreshed["pos"], params["pos"])
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
