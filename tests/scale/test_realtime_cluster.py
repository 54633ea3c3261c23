"""Real-time delivery across nodes: a WebSocket on one node hears writes made through the others."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import signal
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.communication.chat import ChatParticipant

from ..conftest import RunningServer, launch
from ..pg import REDIS_URL, require_redis
from ..realtime.helpers import advancing, open_stream, ws_url
from .conftest import Cluster, TcpProxy
from .test_cluster import chat, new_user, thread_client


def hub_connected(node: RunningServer) -> float:
    """The node's ``threadline_event_hub_connected`` gauge."""
    text = requests.get(f"{node.http_endpoint}/metrics", timeout=5).text
    match = re.search(r"^threadline_event_hub_connected (\S+)$", text, re.M)
    assert match is not None, text
    return float(match.group(1))


async def wait_hub(node: RunningServer, value: float, timeout: float = 20) -> None:
    """Wait until the node's hub gauge reads ``value``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while await asyncio.to_thread(hub_connected, node) != value:
        assert asyncio.get_running_loop().time() < deadline, f"the hub gauge never read {value}"
        await asyncio.sleep(0.1)


def _messages(events: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["message"] for f in events if f["type"] == "chatMessageReceived"]


def test_a_subscriber_on_one_node_receives_writes_from_all(trio: Cluster) -> None:
    a, b, c = trio.nodes
    alice, bob = new_user(trio, a), new_user(trio, b)
    thread_id = chat(a, alice).create_chat_thread(
        "live", thread_participants=[ChatParticipant(identifier=bob.identifier)]
    ).chat_thread.id
    via_a, via_c = thread_client(a, alice, thread_id), thread_client(c, alice, thread_id)
    texts = [f"m{i}" for i in range(30)]

    async def main() -> list[dict[str, Any]]:
        stream = await open_stream(ws_url(b, "after=0"), bob.token)
        try:
            await asyncio.gather(*(
                asyncio.to_thread((via_a if i % 2 else via_c).send_message, text) for i, text in enumerate(texts)
            ))
            await stream.wait_for(lambda s: len(_messages(s.events)) >= len(texts), 20)
            await asyncio.sleep(0.3)  # nothing more may come
            return stream.events
        finally:
            await stream.close()

    events = asyncio.run(main())
    assert sorted(_messages(events)) == sorted(texts)
    assert advancing([f["position"] for f in events])  # in order per partition, nothing twice
    assert events[0]["type"] == "chatThreadCreated"


def test_losing_redis_then_resuming_loses_nothing(postgres_url: str, tmp_path: Path) -> None:
    """Node B's Redis link is cut while A keeps writing; B's subscriber still gets everything, once, in order."""
    require_redis()
    channel = f"threadline-test:{secrets.token_hex(6)}"
    key, resource = base64.b64encode(secrets.token_bytes(32)).decode(), str(uuid.uuid4())
    redis = urlsplit(REDIS_URL)

    def start(name: str, events: str) -> RunningServer:
        home = tmp_path / name
        home.mkdir()
        return launch(home / "data", "--database", postgres_url, "--events", f"{events}?channel={channel}",
                      "--access-key", key, "--resource-id", resource, env={"THREADLINE_THROTTLE": "off"})

    logs: list[str] = []

    async def main() -> list[dict[str, Any]]:
        proxy = TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379)
        await proxy.start()
        nodes: list[RunningServer] = []
        try:
            a = await asyncio.to_thread(start, "a", REDIS_URL)
            nodes.append(a)
            b = await asyncio.to_thread(start, "b", f"redis://127.0.0.1:{proxy.port}/0")
            nodes.append(b)
            made = Cluster(postgres_url, channel, key, resource, nodes)
            alice, bob = new_user(made, a), new_user(made, b)
            thread_id = chat(a, alice).create_chat_thread(
                "outage", thread_participants=[ChatParticipant(identifier=bob.identifier)]
            ).chat_thread.id
            via_a = thread_client(a, alice, thread_id)
            stream = await open_stream(ws_url(b, "after=0"), bob.token)
            try:
                async def send(first: int, count: int) -> None:
                    for i in range(first, first + count):
                        await asyncio.to_thread(via_a.send_message, f"n{i}")

                await wait_hub(b, 1.0)
                await send(0, 5)
                await stream.wait_for(lambda s: len(_messages(s.events)) >= 5, 20)
                proxy.cut()  # B loses Redis: its subscriber must get A's messages from the database
                await wait_hub(b, 0.0)
                await send(5, 5)
                await stream.wait_for(lambda s: len(_messages(s.events)) >= 10, 20)
                proxy.resume()
                await wait_hub(b, 1.0)  # B has resubscribed: the last five come through Redis again
                await send(10, 5)
                await stream.wait_for(lambda s: len(_messages(s.events)) >= 15, 20)
                await asyncio.sleep(0.5)
                return stream.events
            finally:
                await stream.close()
        finally:
            await proxy.close()
            for node in nodes:
                node.stop(signal.SIGKILL)
                assert node.process.stdout is not None
                logs.append(node.process.stdout.read())

    events = asyncio.run(main())
    assert "lost the Redis subscription" in logs[1]  # the outage really happened, on B only
    assert "lost the Redis subscription" not in logs[0]
    assert _messages(events) == [f"n{i}" for i in range(15)]
    assert advancing([f["position"] for f in events])  # in order per partition, nothing twice
