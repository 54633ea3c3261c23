"""The rate limiter's state: none for strangers, and bounded whatever the traffic (issue 9, class 5).

The in-process tests run the real app (real store on each engine, real services) over
httpx's ASGI transport, so they can read the limiter's window count directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.applications import Starlette

from threadline.identity import hmac as signing
from threadline.protocol.wire import Identifier, Participant
from threadline.server import metrics
from threadline.server.app import create_app, open_hub, open_store
from threadline.server.services.actor import Actor
from threadline.server.settings import Settings
from threadline.server.throttle import ACS_RULES, Rule, Throttle

from ..conftest import ENGINES
from .test_operations import sample

CHAT = "api-version=2024-03-07"
IDENTITY = "api-version=2023-10-01"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextlib.contextmanager
def database(engine: str) -> Iterator[str | None]:
    """None for SQLite (a file in the data folder), else the URL of a fresh PostgreSQL database."""
    if engine == "sqlite":
        yield None
        return
    from ..pg import fresh_database, require_postgres

    require_postgres()
    with fresh_database("threadline_throttle") as url:
        yield url


@dataclass
class Served:
    """An app served in-process and a client of it."""

    app: Starlette
    client: httpx.AsyncClient
    settings: Settings

    @property
    def throttle(self) -> Throttle:
        throttle = self.app.state.throttle
        assert isinstance(throttle, Throttle)
        return throttle

    async def user(self) -> tuple[str, str]:
        """A new identity and its chat token (through the identity service)."""
        user, issued = await self.app.state.identity.create(["chat"], None)
        assert issued is not None
        return user.id, issued.token

    async def thread(self, owner: str, members: list[str]) -> str:
        """A thread created through the thread service (charges no budget)."""
        people = [Participant(communication_identifier=_identifier(m)) for m in members]
        created = await self.app.state.threads.create(Actor(owner), "t", people)
        return str(created.thread.id)


def _identifier(raw_id: str) -> Identifier:
    return Identifier(raw_id=raw_id)


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, url: str | None, **changes: object) -> AsyncIterator[Served]:
    settings = replace(Settings(data_dir=tmp_path / "data", http_port=-1, https_port=-1, database=url),
                       **changes).prepared()  # type: ignore[arg-type]
    store = open_store(settings)
    await store.open()
    hub = open_hub(settings, store)
    await hub.start()
    try:
        app = create_app(settings, store, hub)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            yield Served(app, client, settings)
    finally:
        await hub.stop()
        await store.close()


def run(engine: str, tmp_path: Path, scenario: Callable[[Served], Awaitable[None]], **changes: object) -> None:
    """Serve the app on an engine and run one scenario against it."""
    async def main(url: str | None) -> None:
        async with serve(tmp_path, url, **changes) as served:
            await scenario(served)

    with database(engine) as url:
        asyncio.run(main(url))


def chat_requests(thread: str, message: str) -> list[tuple[str, str, bytes | None]]:
    """One request of every throttled chat operation on a thread, half of them with malformed bodies."""
    t = f"/chat/threads/{quote(thread, safe='')}"
    m = f"{t}/messages/{quote(message, safe='')}"
    return [
        ("POST", "/chat/threads", b'{"topic": "x"}'),
        ("GET", "/chat/threads", None),
        ("GET", t, None),
        ("PATCH", t, b'{"topic": '),
        ("DELETE", t, None),
        ("POST", f"{t}/messages", b'{"content": '),
        ("POST", f"{t}/messages", b'{"content": "hello"}'),
        ("GET", f"{t}/messages", None),
        ("GET", m, None),
        ("PATCH", m, b'{"content": 5}'),
        ("DELETE", m, None),
        ("GET", f"{t}/participants", None),
        ("POST", f"{t}/participants/:add", b'{"participants": "no"}'),
        ("POST", f"{t}/participants/:remove", b'{"rawId": "8:acs:x_y"}'),
        ("POST", f"{t}/readReceipts", b'{"chatMessageId": "' + message.encode() + b'"}'),
        ("GET", f"{t}/readReceipts", None),
        ("POST", f"{t}/typing", b"{}"),
        ("POST", f"{t}/typing", b"[[["),
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_unauthenticated_and_unauthorized_floods_create_no_limiter_keys(engine: str, tmp_path: Path) -> None:
    async def scenario(served: Served) -> None:
        alice, alice_token = await served.user()
        bob, bob_token = await served.user()
        carol, carol_token = await served.user()
        thread = await served.thread(alice, [carol])
        message = await served.app.state.messages.send(
            Actor(alice), thread, "hi", kind="text", sender_display_name=None, metadata=None, repeatability_id=None)
        await served.app.state.threads.remove_participant(
            Actor(alice), thread, _identifier(carol))  # carol was a member, and is no more
        forged = alice_token[:-6] + ("A" * 6 if not alice_token.endswith("A" * 6) else "B" * 6)
        callers = {
            "no token": None, "forged token": f"Bearer {forged}", "not bearer": f"Basic {alice_token}",
            "stranger": f"Bearer {bob_token}", "removed member": f"Bearer {carol_token}",
        }
        statuses: set[int] = set()
        for name, authorization in callers.items():
            for _ in range(3):
                targets = [thread, "19:" + secrets.token_hex(2000) + "@thread.v2"]
                for target in targets:
                    for method, path, body in chat_requests(target, message):
                        if name in ("stranger", "removed member") and path == "/chat/threads":
                            continue  # their own threads: their own budgets
                        headers = {"Authorization": authorization} if authorization else {}
                        answer = await served.client.request(method, f"{path}?{CHAT}", content=body,
                                                             headers=headers)
                        statuses.add(answer.status_code)
                        assert served.throttle.tracked_keys == 0, (name, method, path)
                        # An id past 256 characters is refused at the edge (400 naming thread_id) once the
                        # caller is authenticated; everything else is refused for who the caller is.
                        refusals = (401, 403) if target == thread else (400, 401)
                        assert answer.status_code in refusals, (name, method, path, answer.text)
                        if answer.status_code == 400:
                            assert answer.json()["error"]["target"] == "thread_id"
                        assert answer.status_code != 401 or name in ("no token", "forged token", "not bearer")
        # identity operations with a bad signature
        for path, method in (("/identities", "POST"), (f"/identities/{quote(bob, safe='')}", "DELETE"),
                             (f"/identities/{quote(bob, safe='')}/:revokeAccessTokens", "POST"),
                             (f"/identities/{quote(bob, safe='')}/:issueAccessToken", "POST")):
            raw = b"{}"
            headers = signing.sign(b"wrong key" * 4, method, f"{path}?{IDENTITY}", "t", raw, time.time())
            answer = await served.client.request(method, f"{path}?{IDENTITY}", content=raw, headers=headers)
            assert answer.status_code == 401
        assert statuses == {400, 401, 403}  # 400: the over-long ids, refused at the edge
        # A member refused 403 by a service after admission (a chat.join token retitling or deleting the
        # thread, editing or deleting someone else's message) gets its slots back, and no window remains.
        joiner, issued = await served.app.state.identity.create(["chat.join"], None)
        assert issued is not None
        await served.app.state.threads.add_participants(
            Actor(alice), thread, [Participant(communication_identifier=_identifier(joiner.id))],
            repeatability_id=None)
        t = f"/chat/threads/{quote(thread, safe='')}"
        for method, path, body in (("PATCH", t, b'{"topic": "mine"}'), ("DELETE", t, None),
                                   ("PATCH", f"{t}/messages/{message}", b'{"content": "mine"}'),
                                   ("DELETE", f"{t}/messages/{message}", None)):
            answer = await served.client.request(method, f"{path}?{CHAT}", content=body,
                                                 headers={"Authorization": f"Bearer {issued.token}"})
            assert answer.status_code == 403, (method, path, answer.text)
        assert served.throttle.tracked_keys == 0
        assert sample(metrics.render().decode(), "threadline_throttle_keys") == 0

    run(engine, tmp_path, scenario, throttle="on")


@pytest.mark.parametrize("engine", ENGINES)
def test_limiter_keys_stay_under_the_bound_under_a_flood_of_distinct_authenticated_keys(
    engine: str, tmp_path: Path
) -> None:
    bound = 40

    async def scenario(served: Served) -> None:
        assert served.throttle.max_keys == bound
        evicted_before = served.throttle.evictions
        users = [await served.user() for _ in range(30)]
        most = 0
        for user, token in users:
            headers = {"Authorization": f"Bearer {token}"}
            thread = await served.thread(user, [])
            t = f"/chat/threads/{quote(thread, safe='')}"
            for method, path, body, status in (
                ("GET", "/chat/threads", None, 200), ("GET", t, None, 200),
                ("POST", f"{t}/messages", b'{"content": "hi"}', 201), ("GET", f"{t}/messages", None, 200),
                ("GET", f"{t}/participants", None, 200), ("GET", f"{t}/readReceipts", None, 200),
                ("POST", f"{t}/typing", b"{}", 200),
            ):
                answer = await served.client.request(method, f"{path}?{CHAT}", content=body, headers=headers)
                assert answer.status_code == status, answer.text
                most = max(most, served.throttle.tracked_keys)
                assert served.throttle.tracked_keys <= bound
        assert most == bound  # 30 users x 16 windows: the bound was reached and held
        assert served.throttle.evictions - evicted_before == 30 * 16 - bound
        assert sample(metrics.render().decode(), "threadline_throttle_keys") == served.throttle.tracked_keys
        # At the bound, the caller in use keeps its windows: members are throttled as before.
        user, token = users[-1]
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(48):  # list_threads: 50 per 10 s per user, 1 spent above
            answer = await served.client.get(f"/chat/threads?{CHAT}", headers=headers)
            assert answer.status_code == 200
        answer = await served.client.get(f"/chat/threads?{CHAT}", headers=headers)
        assert answer.status_code == 200
        answer = await served.client.get(f"/chat/threads?{CHAT}", headers=headers)
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "TooManyRequests"

    run(engine, tmp_path, scenario, throttle="on", throttle_keys=bound)


# -- the bound itself ---------------------------------------------------------------------------------


def test_the_bound_drops_idle_windows_first_then_the_least_recently_used() -> None:
    clock = Clock()
    throttle = Throttle({"op": (Rule("user", 2, 10),), "long": (Rule("user", 1, 60),)}, clock=clock, max_keys=16)
    for n in range(10_000):  # a flood of distinct keys
        throttle.take("op", user=f"u{n}")
        assert throttle.tracked_keys <= 16
    assert throttle.evictions == 10_000 - 16
    throttle.take("op", user="u9999")  # the newest key kept its window: its second request is its last
    with pytest.raises(Exception, match="Rate limit exceeded"):
        throttle.take("op", user="u9999")
    throttle.take("op", user="u0")  # an evicted key starts again with a full budget
    # Idle windows (older than the longest rule) go before any live one is evicted.
    clock.now += 61
    evictions = throttle.evictions
    throttle.take("long", user="fresh")
    for n in range(14):
        throttle.take("op", user=f"v{n}")
    assert throttle.evictions == evictions and throttle.tracked_keys == 15
    with pytest.raises(Exception, match="Rate limit exceeded"):
        throttle.take("long", user="fresh")


def test_a_refunded_request_leaves_no_window() -> None:
    throttle = Throttle(ACS_RULES, clock=Clock())
    ticket = throttle.take("list_messages", user="u", thread="t")
    assert ticket is not None and throttle.tracked_keys == 4
    throttle.refund(ticket)
    assert throttle.tracked_keys == 0


def test_the_bound_is_configured_and_checked() -> None:
    assert Throttle.acs(max_keys=500).max_keys == 500
    assert Throttle.acs().max_keys == Settings().throttle_keys == 100_000
    with pytest.raises(ValueError, match="at least 16"):
        Throttle.acs(max_keys=3)


@pytest.mark.parametrize("engine", ENGINES)
def test_operations_off_threads_are_still_throttled_once_authenticated(engine: str, tmp_path: Path) -> None:
    """create/list threads (per user) and identity operations (per resource) are admitted too."""
    async def scenario(served: Served) -> None:
        _, token = await served.user()
        headers = {"Authorization": f"Bearer {token}"}
        for method, path, body in (("GET", "/chat/threads", None), ("POST", "/chat/threads", b'{"topic": "t"}')):
            first = await served.client.request(method, f"{path}?{CHAT}", content=body, headers=headers)
            second = await served.client.request(method, f"{path}?{CHAT}", content=body, headers=headers)
            assert (first.status_code, second.status_code) == (200 if method == "GET" else 201, 429)
        budget = served.throttle.rules("create_identity")[0].count
        assert budget == 10
        statuses = []
        for _ in range(budget + 1):
            raw = b"{}"
            signed = signing.sign(served.settings.key_bytes, "POST", f"/identities?{IDENTITY}", "t", raw, time.time())
            answer = await served.client.post(f"/identities?{IDENTITY}", content=raw, headers=signed)
            statuses.append(answer.status_code)
        assert statuses == [201] * budget + [429]

    run(engine, tmp_path, scenario, throttle="0.01")
