"""Throttling at the ACS rates: 429 TooManyRequests with Retry-After, per operation, user and thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.communication.chat import ChatThreadClient, CommunicationTokenCredential
from azure.core.exceptions import HttpResponseError

from threadline.identity.tokens import TokenIssuer
from threadline.protocol.errors import ChatServiceError
from threadline.server.limits import Limits
from threadline.server.throttle import ACS_RULES, Rule, Throttle, make_throttle

from ..conftest import RunningServer
from .conftest import start
from .helpers import Chat, make_user, q, user_messages


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(throttle: Throttle, operation: str, **key: str) -> float:
    """The Retry-After of a refused take (fails the test when it is admitted)."""
    with pytest.raises(ChatServiceError) as caught:
        throttle.take(operation, **key)
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        429, "TooManyRequests", "Rate limit exceeded.")
    assert caught.value.retry_after is not None
    return caught.value.retry_after


def test_sends_are_held_to_10_per_10_seconds_and_30_per_minute_per_thread() -> None:
    clock = Clock()
    throttle = Throttle(ACS_RULES, clock=clock)
    for _ in range(10):
        throttle.take("send_message", user="u1", thread="t")
    assert refused(throttle, "send_message", user="u2", thread="t") == 10  # per thread, whoever sends
    throttle.take("send_message", user="u1", thread="other")  # another thread has its own budget
    clock.now += 4.5
    assert refused(throttle, "send_message", thread="t") == 6  # 5.5 s left, rounded up
    clock.now += 5.5
    for _ in range(10):
        throttle.take("send_message", thread="t")
    clock.now += 10
    for _ in range(10):
        throttle.take("send_message", thread="t")
    clock.now += 10  # 30 in the last 20 s: the minute rule holds until the first ten are 60 s old
    assert refused(throttle, "send_message", thread="t") == 30
    clock.now += 30
    throttle.take("send_message", thread="t")


def test_a_refused_request_takes_no_slot_of_any_rule() -> None:
    clock = Clock()
    throttle = Throttle({"op": (Rule("thread", 2, 10), Rule("user_thread", 5, 10))}, clock=clock)
    throttle.take("op", user="a", thread="t")
    throttle.take("op", user="a", thread="t")
    for _ in range(5):
        refused(throttle, "op", user="b", thread="t")
    clock.now += 10
    for _ in range(2):
        throttle.take("op", user="b", thread="t")
    clock.now += 10
    for _ in range(2):
        throttle.take("op", user="b", thread="t")  # b's per-user budget (5) was not spent by refusals


def test_refund_gives_the_slots_back() -> None:
    throttle = Throttle({"op": (Rule("thread", 1, 10),)}, clock=Clock())
    ticket = throttle.take("op", thread="t")
    assert ticket is not None
    refused(throttle, "op", thread="t")
    throttle.refund(ticket)
    throttle.take("op", thread="t")


def test_idle_keys_are_forgotten() -> None:
    clock = Clock()
    throttle = Throttle(ACS_RULES, clock=clock)
    for n in range(100):
        throttle.take("get_message", user=f"u{n}", thread="t")
    assert throttle.tracked_keys == 101
    clock.now += Throttle.SWEEP_SECONDS + 60
    throttle.take("get_thread", user="u0")
    assert throttle.tracked_keys == 1


def test_unthrottled_operations_and_scaling() -> None:
    throttle = Throttle.acs(scale=2)
    assert throttle.take("not_an_operation") is None
    assert throttle.rules("send_message") == (Rule("thread", 20, 10), Rule("thread", 60, 60))


def test_the_switches() -> None:
    issuer = TokenIssuer(b"k" * 32, "r")
    assert make_throttle(Limits.unlimited(), issuer, "") is None
    assert make_throttle(Limits(), issuer, "off") is None
    on = make_throttle(Limits(), issuer, "")
    assert on is not None and on.rules("create_thread") == ACS_RULES["create_thread"]
    half = make_throttle(Limits(), issuer, "0.5")
    assert half is not None and half.rules("update_thread") == (Rule("thread", 2, 10),)
    for bad in ("fast", "-1", "inf"):
        with pytest.raises(ValueError, match="throttle setting"):
            make_throttle(Limits(), issuer, bad)


def test_forged_tokens_spend_nobody_s_budget() -> None:
    issuer = TokenIssuer(b"k" * 32, "r")
    other = TokenIssuer(b"x" * 32, "r")
    throttle = Throttle(ACS_RULES, issuer)
    good, _ = issuer.issue("8:acs:r_alice", ["chat"], 60, 0)
    forged, _ = other.issue("8:acs:r_alice", ["chat"], 60, 0)
    assert throttle.user_of(f"Bearer {good}") == "8:acs:r_alice"
    assert throttle.user_of(f"Bearer {forged}") is None
    assert throttle.user_of("Basic abc") is None


# -- against a server -------------------------------------------------------------------------------


def test_the_server_answers_429_with_retry_after_and_the_acs_body(throttled_server: RunningServer) -> None:
    alice, bob = make_user(throttled_server), make_user(throttled_server)
    chat = Chat(throttled_server.http_endpoint, alice.token)
    thread_id = chat.create_thread("busy", [bob.id])
    started = time.monotonic()
    for n in range(10):
        chat.send(thread_id, f"m{n}")
    answer = chat.call("POST", f"/chat/threads/{q(thread_id)}/messages", {"content": "one too many"},
                       headers={"x-ms-client-request-id": "req-429"})
    elapsed = time.monotonic() - started
    assert answer.status_code == 429
    assert answer.json() == {"error": {"code": "TooManyRequests", "message": "Rate limit exceeded."}}
    assert answer.headers["x-ms-error-code"] == "TooManyRequests"
    assert answer.headers["x-ms-client-request-id"] == "req-429"
    assert 10 - elapsed - 1 <= int(answer.headers["Retry-After"]) <= 10
    # Another thread, and reads of this one, are not affected; nothing was written.
    other = chat.create_thread("calm", [])
    chat.send(other, "fine")
    assert len(user_messages(chat.messages(thread_id))) == 10
    metrics = chat.session.get(throttled_server.http_endpoint + "/metrics", timeout=10).text
    assert 'threadline_throttled_requests_total{operation="send_message"} 1.0' in metrics


def test_strangers_do_not_spend_a_thread_s_budget(throttled_server: RunningServer) -> None:
    alice, mallory = make_user(throttled_server), make_user(throttled_server)
    chat = Chat(throttled_server.http_endpoint, alice.token)
    thread_id = chat.create_thread("private", [])
    outsider = Chat(throttled_server.http_endpoint, mallory.token)
    for _ in range(15):
        answer = outsider.call("POST", f"/chat/threads/{q(thread_id)}/messages", {"content": "spam"})
        assert answer.status_code == 403
    for n in range(10):
        chat.send(thread_id, f"mine {n}")


def test_the_official_sdk_waits_out_a_429_and_succeeds(throttled_server: RunningServer) -> None:
    """azure-core retries any status carrying Retry-After, POST included (official-sdk.md §9)."""
    alice = make_user(throttled_server)
    chat = Chat(throttled_server.http_endpoint, alice.token)
    thread_id = chat.create_thread("patient", [])
    client = ChatThreadClient(throttled_server.https_endpoint, CommunicationTokenCredential(alice.token), thread_id,
                              connection_verify=throttled_server.cert_path)
    for n in range(10):
        client.send_message(f"m{n}")
    started = time.monotonic()
    client.send_message("after the wait")
    waited = time.monotonic() - started
    assert 5 <= waited <= 15
    assert len(user_messages(chat.messages(thread_id))) == 11
    with pytest.raises(HttpResponseError) as caught:  # with retries off the 429 surfaces as ACS's error
        for n in range(10):
            client.send_message(f"burst {n}", retry_total=0)
    assert caught.value.status_code == 429
    assert caught.value.error is not None and caught.value.error.code == "TooManyRequests"
    client.close()


def test_no_limits_lifts_throttling(tmp_path: Path) -> None:
    server = start(tmp_path / "data", "--no-limits", env={"THREADLINE_THROTTLE": "on"})
    try:
        alice = make_user(server)
        chat = Chat(server.http_endpoint, alice.token)
        thread_id = chat.create_thread("unthrottled", [])
        for n in range(40):
            chat.send(thread_id, f"m{n}")
        for _ in range(60):
            assert chat.call("GET", f"/chat/threads/{q(thread_id)}").status_code == 200
    finally:
        server.stop()
