"""Property tests: arbitrary text in any parameter of any route gets a 4xx with the ACS body, never a 5xx.

Every Chat and Identity operation is described once (:data:`ROUTES`) with a
request that succeeds; each test replaces one part of it (a path parameter, a
query parameter, a header, a body field, the whole body) with generated input:
all of Unicode, huge integers, empty, very long, and values known to have
broken parsers (``²``, 20-digit numbers, year 10000). Identity requests are
signed over the mutated bytes, so the input reaches validation instead of
stopping at the signature. The app runs in process on each engine
(:mod:`.inprocess`), so a few hundred examples take seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..conftest import ENGINES
from .inprocess import CHAT, IDENTITY, InProcessServer, in_process, q

# -- the routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One operation and a request to it that succeeds."""

    name: str
    method: str
    path: str  # with {thread_id}, {message_id}, {user_id}
    body: Any = None
    query: tuple[str, ...] = ()
    identity: bool = False
    fresh: bool = False  # the request destroys what it names: give it its own thread / identity


def _participant(user: str) -> dict[str, Any]:
    return {"communicationIdentifier": {"rawId": user, "communicationUser": {"id": user}}, "displayName": "Bo",
            "shareHistoryTime": "2020-01-01T00:00:00Z", "metadata": {"k": "v"}}


THREAD = "/chat/threads/{thread_id}"
MESSAGE = THREAD + "/messages/{message_id}"
PAGED = ("maxPageSize", "startTime", "syncState")
RETAIN = {"kind": "threadCreationDate", "deleteThreadAfterDays": 30}
ROUTES = [
    Route("create_thread", "POST", "/chat/threads",
          {"topic": "t", "participants": [_participant("{member}")], "metadata": {"k": "v"},
           "retentionPolicy": RETAIN}),
    Route("list_threads", "GET", "/chat/threads", query=PAGED),
    Route("get_thread", "GET", THREAD),
    Route("update_thread", "PATCH", THREAD,
          {"topic": "new", "metadata": {"a": "b", "c": None}, "retentionPolicy": RETAIN}),
    Route("delete_thread", "DELETE", THREAD, fresh=True),
    Route("send_message", "POST", THREAD + "/messages",
          {"content": "hi", "senderDisplayName": "Al", "type": "text", "metadata": {"k": "v"}}),
    Route("list_messages", "GET", THREAD + "/messages", query=PAGED),
    Route("get_message", "GET", MESSAGE),
    Route("update_message", "PATCH", MESSAGE, {"content": "edited", "metadata": {"k": None}}),
    Route("delete_message", "DELETE", MESSAGE, fresh=True),
    Route("list_participants", "GET", THREAD + "/participants", query=("maxPageSize", "skip")),
    Route("add_participants", "POST", THREAD + "/participants/:add", {"participants": [_participant("{member}")]}),
    Route("remove_participant", "POST", THREAD + "/participants/:remove",
          {"rawId": "{member}", "communicationUser": {"id": "{member}"}}, fresh=True),
    Route("send_read_receipt", "POST", THREAD + "/readReceipts", {"chatMessageId": "{message_id}"}),
    Route("list_read_receipts", "GET", THREAD + "/readReceipts", query=("maxPageSize", "skip")),
    Route("send_typing", "POST", THREAD + "/typing", {"senderDisplayName": "Al"}),
    Route("create_identity", "POST", "/identities", {"createTokenWithScopes": ["chat"], "expiresInMinutes": 60},
          identity=True),
    Route("delete_identity", "DELETE", "/identities/{user_id}", identity=True, fresh=True),
    Route("issue_token", "POST", "/identities/{user_id}/:issueAccessToken",
          {"scopes": ["chat"], "expiresInMinutes": 60}, identity=True),
    Route("revoke_tokens", "POST", "/identities/{user_id}/:revokeAccessTokens", identity=True, fresh=True),
    Route("exchange_teams_token", "POST", "/teamsUser/:exchangeAccessToken",
          {"token": "t", "appId": "a", "userId": "u"}, identity=True),
]
REPEATABLE = {"create_thread", "send_message", "add_participants", "send_read_receipt"}
#: Each route with every header it reads (and two it should not care about).
HEADER_CASES = [
    (route, name) for route in ROUTES
    for name in (("authorization", "x-ms-date", "date", "x-ms-content-sha256") if route.identity
                 else ("authorization", *(("repeatability-request-id",) if route.name in REPEATABLE else ())))
    + ("x-ms-client-request-id", "content-type", "accept")
]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into a JSON template (containers too, so whole lists and maps get replaced)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


BODY_FIELDS = [(route, path) for route in ROUTES if route.body is not None for path in _leaves(route.body)]
PATH_PARAMS = [(route, name) for route in ROUTES for name in ("thread_id", "message_id", "user_id")
               if "{" + name + "}" in route.path]
QUERY_PARAMS = [(route, name) for route in ROUTES for name in (*route.query, "api-version")]

# -- the world the requests point at ---------------------------------------------------------------


@dataclass
class World:
    """A member, a second member, their thread with a message, and an identity to manage."""

    server: InProcessServer
    owner: str = ""
    token: str = ""
    member: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.owner, self.token = self.server.new_user()
        self.member, _ = self.server.new_user()
        self.ids = self.resources()

    def resources(self) -> dict[str, str]:
        """A new thread (owner and member) holding one message, and a new identity."""
        made = self.server.chat(self.token, "POST", "/chat/threads",
                                {"topic": "fuzz", "participants": [_participant(self.member)]})
        assert made.status_code == 201, made.text
        thread = made.json()["chatThread"]["id"]
        sent = self.server.chat(self.token, "POST", f"/chat/threads/{q(thread)}/messages", {"content": "seed"})
        assert sent.status_code == 201, sent.text
        user, _ = self.server.new_user()
        return {"thread_id": thread, "message_id": sent.json()["id"], "user_id": user, "member": self.member}

    def for_route(self, route: Route) -> dict[str, str]:
        return self.resources() if route.fresh else self.ids


def _fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        return template.format(**ids) if template.startswith("{") and template.endswith("}") else template
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, ids) for v in template]
    return template


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)  # type: ignore[index,call-overload]
    return copy


@dataclass
class Request:
    """A request before it is sent: everything a test may replace."""

    route: Route
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    headers: dict[str, Any]
    body: bytes | None
    raw_query: str | None = None

    def send(self, server: InProcessServer, token: str, *, sign: bool = True) -> httpx.Response:
        path = self.route.path.format(**{k: q(v) for k, v in self.path_params.items()})
        query = self.raw_query if self.raw_query is not None else "&".join(
            f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.query)
        target = f"{path}?{query}"
        body = self.body or b""
        headers: dict[str, Any] = {"Content-Type": "application/json"}
        if self.route.identity:
            if sign:
                headers.update(server.signed_headers(self.route.method, target, body))
        else:
            headers["Authorization"] = f"Bearer {token}"
        headers.update(self.headers)
        return server.request(self.route.method, target, body=body, headers=headers)


def baseline(world: World, route: Route) -> Request:
    ids = world.for_route(route)
    params = {name: ids[name] for name in ("thread_id", "message_id", "user_id") if "{" + name + "}" in route.path}
    body = json.dumps(_fill(route.body, ids)).encode() if route.body is not None else None
    version = IDENTITY if route.identity else CHAT
    return Request(route, params, [("api-version", version)], {}, body)


def assert_acs(answer: httpx.Response, what: object) -> None:
    """Not a 5xx; a 4xx carries the ACS error body and (but for 405, sec-conn's) ``x-ms-error-code``."""
    assert answer.status_code < 500, (what, answer.status_code, answer.text[:500])
    if answer.status_code >= 400:
        assert answer.headers["content-type"].startswith("application/json"), (what, answer.headers)
        error = answer.json()["error"]
        assert isinstance(error["code"], str) and error["code"], (what, error)
        assert isinstance(error["message"], str) and error["message"], (what, error)
        assert set(error) <= {"code", "message", "target", "details", "innererror"}, (what, error)
        if answer.status_code != 405:
            assert answer.headers["x-ms-error-code"] == error["code"], (what, answer.headers)


# -- generated input -------------------------------------------------------------------------------

NASTY = ["", " ", "²", "\u0663", "\U0001d7d8", "0", "-1", "+1", "1e3", "1_000", "0x10", "99999999999999999999",
         "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
         "99999999999999999999.6161", "1.00", "1.zz", "00.", ".", "9999-12-31T23:59:59-14:00",
         "0001-01-01T00:00:00+14:00", "10000-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "T", "null", "true",
         "[]", "{}", "%00", "%C2%B2", "\u202e", "\ufeff", "a" * 5000, "9" * 5000,
         "Mon, 01 Jan 99999999999999999999 00:00:00 GMT", "Mon, 01 Jan 2020 99999999999999999:00:00 GMT",
         "Fri, 31 Dec 9999 23:59:59 -1400", "Mon, 01 Jan 2020 00:00:00 +99999999999999999999", "Bearer ",
         "Bearer ²", "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=²"]


def _texts(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(alphabet, max_size=40),
        st.sampled_from(NASTY),
        st.integers(-(10**40), 10**40).map(str),
        st.text(alphabet, min_size=300, max_size=3000),
        st.builds(lambda n: "9" * n, st.integers(15, 25)),
        st.text("0123456789abcdef", min_size=3000, max_size=6000),  # long and incompressible (an index row)
    )


#: All of Unicode but lone surrogates (which cannot be UTF-8 on the wire); control characters included.
texts = _texts(st.characters(exclude_categories=["Cs"]))
#: What a header can carry: no control characters (HTTP servers refuse them before the app).
header_texts = _texts(st.characters(exclude_categories=["Cs", "Cc"]))
#: Any JSON value, strings with lone surrogates included (sent as \\ud800 escapes).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**40), 10**40) | st.floats()
    | texts | st.text(st.characters(), max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(st.characters(), max_size=8), inner,
                                                                max_size=3),
    max_leaves=6,
)
FAST = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", params=ENGINES)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The app in process on each engine, with the resources the requests point at."""
    data: Path = tmp_path_factory.mktemp(f"props-{request.param}")
    with in_process(request.param, data) as server:
        yield World(server)


def test_every_route_succeeds_unmutated(world: World) -> None:
    """The baselines are real requests: unmutated, each gets its 2xx (so a mutation is what a 4xx is about)."""
    expected = {"delete_thread": 204, "delete_message": 204, "remove_participant": 204, "delete_identity": 204,
                "revoke_tokens": 204, "update_thread": 204, "update_message": 204, "exchange_teams_token": 403}
    for route in ROUTES:
        answer = baseline(world, route).send(world.server, world.token)
        assert answer.status_code == expected.get(route.name, answer.status_code), (route.name, answer.text)
        assert answer.status_code < 300 or route.name == "exchange_teams_token", (route.name, answer.text)


@FAST
@given(data=st.data())
def test_any_path_parameter_gives_4xx_not_5xx(world: World, data: st.DataObject) -> None:
    route, name = data.draw(st.sampled_from(PATH_PARAMS))
    request = baseline(world, route)
    request.path_params[name] = data.draw(texts)
    assert_acs(request.send(world.server, world.token), (route.name, name, request.path_params[name][:80]))


@FAST
@given(data=st.data())
def test_any_query_parameter_gives_4xx_not_5xx(world: World, data: st.DataObject) -> None:
    route, name = data.draw(st.sampled_from(QUERY_PARAMS))
    request = baseline(world, route)
    value = data.draw(texts)
    request.query = [(k, v) for k, v in request.query if k != name] + [(name, value)]
    if data.draw(st.booleans()):  # the same parameter twice, or an unknown one
        request.query.append((data.draw(st.sampled_from([name, "x"])), data.draw(texts)))
    assert_acs(request.send(world.server, world.token), (route.name, name, value[:80]))


@FAST
@given(data=st.data())
def test_any_raw_query_string_gives_4xx_not_5xx(world: World, data: st.DataObject) -> None:
    """Bytes the query parser has to cope with: bad percent escapes, invalid UTF-8, stray separators."""
    route = data.draw(st.sampled_from(ROUTES))
    request = baseline(world, route)
    junk = data.draw(st.lists(st.sampled_from(["%", "%ZZ", "%FF", "%C2", "%C2%B2", "%00", "&", "=", ";", "+",
                                               "syncState=", "skip=", "maxPageSize=", "startTime=", "9" * 21]),
                              max_size=8))
    version = IDENTITY if route.identity else CHAT
    request.raw_query = f"api-version={version}&" + "".join(junk)
    assert_acs(request.send(world.server, world.token), (route.name, request.raw_query))


@FAST
@given(data=st.data())
def test_any_header_gives_4xx_not_5xx(world: World, data: st.DataObject) -> None:
    route, name = data.draw(st.sampled_from(HEADER_CASES))
    value = data.draw(header_texts)
    request = baseline(world, route)
    request.headers[name] = value.strip(" \t").encode("utf-8")  # raw bytes, as a client may put on the wire
    assert_acs(request.send(world.server, world.token), (route.name, name, value[:80]))


@FAST
@given(data=st.data())
def test_any_body_field_gives_4xx_not_5xx(world: World, data: st.DataObject) -> None:
    route, path = data.draw(st.sampled_from(BODY_FIELDS))
    request = baseline(world, route)
    assert request.body is not None
    new = data.draw(json_values)
    mutated = _replace(json.loads(request.body), path, new)
    if data.draw(st.booleans()):
        request.body = json.dumps(mutated).encode()  # lone surrogates as \\udxxx escapes
    else:  # raw characters; lone surrogates become bytes that are not UTF-8
        request.body = json.dumps(mutated, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert_acs(request.send(world.server, world.token), (route.name, path, repr(new)[:80]))


@FAST
@given(data=st.data())
def test_any_body_gives_4xx_not_5xx(world: World, data: st.DataObject) -> None:
    route = data.draw(st.sampled_from(ROUTES))
    request = baseline(world, route)
    request.body = data.draw(st.one_of(
        st.binary(max_size=200),
        texts.map(lambda t: t.encode("utf-8")),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.sampled_from([b"\xff\xfe", b'{"content": "\xff"}', b'{"topic": "\xc3"}', b"\xef\xbb\xbf{}",
                         b'{"content": "\\ud800"}', b'{"\xff": 1}', b"{" * 5000, b"[" * 100000]),
    ))
    assert_acs(request.send(world.server, world.token), (route.name, request.body[:80]))
