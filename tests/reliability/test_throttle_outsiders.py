"""Nobody outside a thread can spend its budgets, on any throttled operation (issue 9, class 6).

A stranger, a removed member, a caller without a token and one with a forged token each send
enough requests (well-formed and malformed: answered 400 on the old code, which counted them)
to spend the thread's budget if they counted; then
the member still gets exactly its whole budget, and is throttled at its end as before.
Served by a real server on each engine, with the ACS rates scaled by 0.2 to keep it short.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from threadline.server.throttle import Throttle

from ..conftest import ENGINES, RunningServer, serving
from .conftest import drain
from .helpers import Chat, identifier, make_user, q

SCALE = 0.2
RULES = Throttle.acs(scale=SCALE)
MALFORMED = b'{"content": '

# operation -> (method, path after the thread, member's body, member's status)
OPERATIONS: dict[str, tuple[str, str, Any, int]] = {
    "get_thread": ("GET", "", None, 200),
    "update_thread": ("PATCH", "", {"topic": "renamed"}, 204),
    "delete_thread": ("DELETE", "", None, 204),
    "send_message": ("POST", "/messages", {"content": "hello"}, 201),
    "list_messages": ("GET", "/messages", None, 200),
    "get_message": ("GET", "/messages/{m}", None, 200),
    "update_message": ("PATCH", "/messages/{m}", {"content": "edited"}, 204),
    "delete_message": ("DELETE", "/messages/{m}", None, 204),
    "list_participants": ("GET", "/participants", None, 200),
    "add_participants": ("POST", "/participants/:add", {"participants": "{dave}"}, 201),
    "remove_participant": ("POST", "/participants/:remove", "{nobody}", 204),
    "send_read_receipt": ("POST", "/readReceipts", {"chatMessageId": "{m}"}, 200),
    "list_read_receipts": ("GET", "/readReceipts", None, 200),
    "send_typing": ("POST", "/typing", {}, 200),
}


@pytest.fixture(scope="module", params=ENGINES)
def scaled_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with the ACS size limits and the ACS rates scaled by 0.2, on each engine."""
    data = tmp_path_factory.mktemp(f"outsiders-{request.param}") / "data"
    with serving(request.param, data, env={"THREADLINE_THROTTLE": str(SCALE)}) as server:
        drain(server)
        yield server


def test_every_thread_operation_is_throttled() -> None:
    """The table below covers every throttled operation that takes a thread."""
    from threadline.server.routes.chat import routes

    on_threads = {r.name for r in routes if "{thread_id}" in r.path and RULES.rules(r.name)}
    assert on_threads == set(OPERATIONS)


def _fill(body: Any, values: dict[str, Any]) -> Any:
    """The body with each placeholder (a whole string value) replaced."""
    if isinstance(body, str):
        return values.get(body, body)
    if isinstance(body, dict):
        return {k: _fill(v, values) for k, v in body.items()}
    return body


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_outsiders_cannot_push_members_into_429(scaled_server: RunningServer, operation: str) -> None:
    server = scaled_server
    alice, bob, carol, dave = (make_user(server) for _ in range(4))
    member = Chat(server.http_endpoint, alice.token)
    thread = member.create_thread("budget", [carol.id])
    spent = 0  # the member's own slots of this operation spent while setting up
    removed = member.call("POST", f"/chat/threads/{q(thread)}/participants/:remove", identifier(carol.id))
    assert removed.status_code == 204
    if operation == "remove_participant":
        spent = 1
    message = member.send(thread, "first") if "{m}" in str(OPERATIONS[operation]) else ""
    method, suffix, template, status = OPERATIONS[operation]
    path = f"/chat/threads/{q(thread)}" + suffix.replace("{m}", q(message))
    body = _fill(template, {
        "{m}": message, "{dave}": [{"communicationIdentifier": identifier(dave.id)}],
        "{nobody}": identifier(f"8:acs:{server.resource_id}_nobody"),
    })

    rules = RULES.rules(operation)
    thread_budget = min((r.count for r in rules if r.scope == "thread"), default=2)
    member_budget = min(r.count for r in rules) - spent
    forged = alice.token[:-6] + ("A" * 6 if not alice.token.endswith("A" * 6) else "B" * 6)
    outsiders = [
        (Chat(server.http_endpoint, bob.token), 403),  # a stranger
        (Chat(server.http_endpoint, carol.token), 403),  # a removed member
        (Chat(server.http_endpoint, None), 401),
        (Chat(server.http_endpoint, forged), 401),
    ]
    # Every other outsider request is malformed: a body that is not JSON, maxPageSize=0, a NUL message id.
    bad_path = f"/chat/threads/{q(thread)}" + suffix.replace("{m}", q("\x00"))
    for outsider, refused in outsiders:
        for n in range(thread_budget + 1):
            if n % 2:
                answer = outsider.session.request(
                    method, f"{server.http_endpoint}{bad_path}", params={"api-version": "2024-03-07", "maxPageSize": 0},
                    data=MALFORMED if body is not None else None,
                    headers={"Authorization": f"Bearer {outsider.token}"} if outsider.token else {}, timeout=30,
                )
            else:
                answer = outsider.call(method, path, body)
            assert answer.status_code == refused, (operation, answer.status_code, answer.text)
            assert answer.headers["x-ms-error-code"] == answer.json()["error"]["code"]

    for n in range(member_budget):
        answer = member.call(method, path, body)
        assert answer.status_code == status, (operation, n, answer.text)
    answer = member.call(method, path, body)  # members are still throttled at the end of their budget
    assert answer.status_code == 429, (operation, answer.text)
    assert answer.json()["error"]["code"] == "TooManyRequests"
    assert int(answer.headers["Retry-After"]) >= 1
