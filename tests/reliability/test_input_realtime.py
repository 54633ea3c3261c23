"""Property test of the real-time endpoint's query: any value is either served or closed as a bad request.

``after``, ``heartbeat`` and ``access_token`` get arbitrary text (all of
Unicode, huge integers, empty, long); the connection must then either sync and
answer a ping, or close with ``4000`` (bad request) / ``4001`` (unauthorized), never ``1011`` or
an abnormal close. ``api-version`` gets short ASCII only: the server echoes it
in the close reason, whose 123-byte cap is another change (issue 9, class 9).
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..conftest import RunningServer
from ..realtime.helpers import open_stream, ws_url
from .helpers import ChatUser, make_user
from .test_input_properties import NASTY

values = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    st.sampled_from([v for v in NASTY if len(v) < 1000]),
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(str),
)
PARAMETERS = st.dictionaries(
    st.sampled_from(["after", "heartbeat", "access_token", "api-version"]),
    values,
    min_size=1,
).map(lambda d: {k: (v.encode("ascii", "ignore").decode()[:20] if k == "api-version" else v) for k, v in d.items()})


@pytest.fixture(scope="module")
def listener(acs_server: RunningServer) -> ChatUser:
    return make_user(acs_server)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(parameters=PARAMETERS, bearer=st.booleans())
def test_any_realtime_query_is_served_or_closed_as_a_bad_request(
    acs_server: RunningServer, listener: ChatUser, parameters: dict[str, str], bearer: bool
) -> None:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in parameters.items())

    async def outcome() -> tuple[str, int | None, str]:
        stream = await open_stream(ws_url(acs_server, query), listener.token if bearer else None, synced=False)
        try:
            await stream.wait_for(lambda s: bool(s.of_type("synced")) or s.close_code is not None, 15)
            if stream.close_code is None:  # served: it must be live, not a socket whose pump died
                await stream.ws.send_str('{"type":"ping"}')
                await stream.wait_type("pong", timeout=15)
                return "live", None, ""
            return "closed", stream.close_code, stream.close_reason
        finally:
            await stream.close()

    state, code, reason = asyncio.run(outcome())
    if state == "closed":
        assert code in (4000, 4001), (parameters, code, reason)
        assert reason, (parameters, code)
