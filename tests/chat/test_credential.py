"""CommunicationTokenCredential (sync and aio) with real tokens from TokenIssuer."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from azure.communication.chat import CommunicationTokenCredential as OfficialCredential
from azure.core.credentials import AccessToken

from threadline.chat import CommunicationTokenCredential
from threadline.chat.aio import CommunicationTokenCredential as AsyncCredential
from threadline.identity.tokens import TokenIssuer, derive_signing_key

ISSUER = TokenIssuer(derive_signing_key(b"k" * 32), "resource-1")
USER = "8:acs:resource-1_00000000-0000-0000-0000-000000000001"


def mint(seconds: int) -> tuple[str, int]:
    """A real token expiring in about ``seconds`` (whole minutes shifted by the issue time)."""
    minutes = max(1, -(-seconds // 60))
    return ISSUER.issue(USER, ["chat"], minutes, 0, now=time.time() + seconds - minutes * 60)


def jwt(payload: dict[str, Any]) -> str:
    def seg(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{seg({'alg': 'none'})}.{seg(payload)}.sig"


class Refresher:
    """Counts calls and hands out fresh real tokens."""

    def __init__(self, seconds: int = 3600, delay: float = 0.0) -> None:
        self.calls = 0
        self.seconds = seconds
        self.delay = delay
        self.tokens: list[str] = []

    def __call__(self) -> AccessToken:
        self.calls += 1
        time.sleep(self.delay)
        token, expires = mint(self.seconds)
        self.tokens.append(token)
        return AccessToken(token, expires)

    async def coro(self) -> AccessToken:
        self.calls += 1
        await asyncio.sleep(self.delay)
        token, expires = mint(self.seconds)
        self.tokens.append(token)
        return AccessToken(token, expires)


# -- parsing ------------------------------------------------------------------------------------


def test_reads_exp_of_a_real_token() -> None:
    token, expires = mint(3600)
    got = CommunicationTokenCredential(token).get_token()
    assert got == AccessToken(token, expires)
    assert isinstance(got.expires_on, int)


def test_reads_base64url_payloads_the_official_credential_rejects() -> None:
    exp = int(time.time()) + 3600
    # '>>>' and '???' encode to base64url '-' and '_' characters.
    token = jwt({"exp": exp, "x": ">>>???~~~"})
    assert "-" in token.split(".")[1] or "_" in token.split(".")[1]
    with pytest.raises(ValueError, match="Token is not formatted correctly"):
        OfficialCredential(token)
    assert CommunicationTokenCredential(token).get_token().expires_on == exp


@pytest.mark.parametrize("bad", ["garbage-token", "a.b", "a.!!!.c", jwt({"sub": "x"}), jwt({"exp": "soon"}),
                                 "a." + base64.urlsafe_b64encode(b"\xff\xfe").decode() + ".c"])
def test_malformed_tokens_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="Token is not formatted correctly"):
        CommunicationTokenCredential(bad)
    with pytest.raises(ValueError, match="Token is not formatted correctly"):
        AsyncCredential(bad)


def test_a_non_string_token_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"Token must be a string\."):
        CommunicationTokenCredential(123)  # type: ignore[arg-type]


def test_proactive_refresh_needs_a_refresher() -> None:
    token, _ = mint(3600)
    with pytest.raises(ValueError, match="'token_refresher' must not be None"):
        CommunicationTokenCredential(token, proactive_refresh=True)
    with pytest.raises(ValueError, match="'token_refresher' must not be None"):
        AsyncCredential(token, proactive_refresh=True)


# -- on-demand refresh (sync) -------------------------------------------------------------------


def test_without_refresher_the_token_is_returned_even_when_expiring() -> None:
    token, expires = mint(30)
    assert CommunicationTokenCredential(token).get_token() == AccessToken(token, expires)


def test_no_refresh_outside_the_two_minute_window() -> None:
    token, _ = mint(600)
    refresher = Refresher()
    cred = CommunicationTokenCredential(token, token_refresher=refresher)
    assert cred.get_token().token == token
    assert refresher.calls == 0


def test_refreshes_inside_the_two_minute_window() -> None:
    token, _ = mint(60)
    refresher = Refresher()
    cred = CommunicationTokenCredential(token, token_refresher=refresher)
    fresh = cred.get_token()
    assert refresher.calls == 1
    assert fresh.token == refresher.tokens[0]
    assert fresh.expires_on > time.time() + 3000
    assert cred.get_token() == fresh
    assert refresher.calls == 1


def test_a_refresher_returning_an_expired_token_raises() -> None:
    token, _ = mint(60)
    cred = CommunicationTokenCredential(token, token_refresher=lambda: AccessToken("x", int(time.time()) - 1))
    with pytest.raises(ValueError, match=r"The token returned from the token_refresher is expired\."):
        cred.get_token()


def test_a_refresher_returning_a_string_raises_attribute_error() -> None:
    token, _ = mint(60)
    fresh, _ = mint(3600)
    cred = CommunicationTokenCredential(token, token_refresher=lambda: fresh)  # type: ignore[arg-type,return-value]
    with pytest.raises(AttributeError, match="expires_on"):
        cred.get_token()


@pytest.mark.parametrize("seconds_left", [60, -5])
def test_concurrent_callers_refresh_once(seconds_left: int) -> None:
    token, _ = mint(seconds_left)
    refresher = Refresher(delay=0.3)
    cred = CommunicationTokenCredential(token, token_refresher=refresher)
    results: list[AccessToken] = []
    threads = [threading.Thread(target=lambda: results.append(cred.get_token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert refresher.calls == 1
    assert len(results) == 8
    if seconds_left < 0:
        # nobody may use an expired token: everyone waited for the refresh
        assert {r.token for r in results} == {refresher.tokens[0]}
    else:
        assert {r.token for r in results} <= {token, refresher.tokens[0]}
    assert cred.get_token().token == refresher.tokens[0]


def test_proactive_refresh_happens_ten_minutes_before_expiry() -> None:
    # 603 s, not 601: ``exp`` is whole seconds, so the refresh window must open well after the
    # first get_token() below, or that call (rightly) refreshes on demand
    token, expires = mint(603)
    refresher = Refresher()
    with CommunicationTokenCredential(token, token_refresher=refresher, proactive_refresh=True) as cred:
        assert cred.get_token().token == token
        deadline = time.time() + (expires - 600 - time.time()) + 3
        # wait for the refresh to finish, not merely to start: while it runs, the old
        # token is still valid and is rightly what get_token() returns
        while not refresher.tokens and time.time() < deadline:
            time.sleep(0.05)
        assert refresher.calls == 1
        assert cred.get_token().token == refresher.tokens[0]
    with pytest.raises(RuntimeError, match="cannot be reused once it has been closed"):
        cred.get_token()
    with pytest.raises(RuntimeError, match="cannot be reused once it has been closed"):
        cred.__enter__()


# -- aio ----------------------------------------------------------------------------------------


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def test_aio_refreshes_once_for_concurrent_tasks() -> None:
    async def main() -> None:
        token, _ = mint(-5)
        refresher = Refresher(delay=0.2)
        cred = AsyncCredential(token, token_refresher=refresher.coro)
        results = await asyncio.gather(*(cred.get_token() for _ in range(8)))
        assert refresher.calls == 1
        assert {r.token for r in results} == {refresher.tokens[0]}

    run(main)


def test_aio_valid_token_is_used_while_another_task_refreshes() -> None:
    async def main() -> None:
        token, _ = mint(60)
        refresher = Refresher(delay=0.2)
        cred = AsyncCredential(token, token_refresher=refresher.coro)
        results = await asyncio.gather(*(cred.get_token() for _ in range(5)))
        assert refresher.calls == 1
        assert results[0].token == refresher.tokens[0]
        assert {r.token for r in results[1:]} == {token}

    run(main)


def test_aio_errors_of_bad_refreshers() -> None:
    async def main() -> None:
        token, _ = mint(60)

        async def expired() -> AccessToken:
            return AccessToken("x", int(time.time()) - 1)

        with pytest.raises(ValueError, match="expired"):
            await AsyncCredential(token, token_refresher=expired).get_token()
        sync_refresher = Refresher()
        with pytest.raises(TypeError, match="can't be used in 'await' expression"):
            await AsyncCredential(token, token_refresher=sync_refresher).get_token()

    run(main)


def test_aio_proactive_refresh_and_close() -> None:
    async def main() -> None:
        token, expires = mint(601)
        refresher = Refresher()
        async with AsyncCredential(token, token_refresher=refresher.coro, proactive_refresh=True) as cred:
            deadline = time.time() + (expires - 600 - time.time()) + 3
            while not refresher.tokens and time.time() < deadline:  # finished, not just started
                await asyncio.sleep(0.05)
            assert refresher.calls == 1
            assert (await cred.get_token()).token == refresher.tokens[0]
        with pytest.raises(RuntimeError, match="cannot be reused"):
            await cred.get_token()

    run(main)
