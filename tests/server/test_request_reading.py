"""A request's headers and query are read once, and read exactly as Starlette's own objects read them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers, QueryParams

from threadline.server.endpoint import _header_dict, _query_dict

_QUERY_TEXT = st.text(alphabet=st.sampled_from("ab=&%+2Fx-._~ \u00e9"), max_size=40)
_NAMES = st.sampled_from([b"authorization", b"content-length", b"x-ms-client-request-id", b"origin"])
_VALUES = st.binary(max_size=12).filter(lambda v: b"\r" not in v and b"\n" not in v)


@settings(max_examples=400, deadline=None)
@given(_QUERY_TEXT)
def test_the_query_reads_as_starlettes_query_params(text: str) -> None:
    raw = text.encode("latin-1", "replace")
    ours = _query_dict({"query_string": raw})
    theirs = QueryParams(raw.decode("latin-1"))
    assert set(ours) == set(theirs.keys())
    for name in ours:
        assert ours[name] == theirs.get(name)


def test_usual_and_escaped_queries() -> None:
    assert _query_dict({"query_string": b"api-version=2024-03-07&maxPageSize=5"}) == {
        "api-version": "2024-03-07", "maxPageSize": "5"}
    assert _query_dict({"query_string": b"a=1&a=2&flag&&b="}) == {"a": "2", "flag": "", "b": ""}
    assert _query_dict({"query_string": b"syncState=a%2Bb+c"}) == {"syncState": "a+b c"}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=8))
def test_the_headers_read_as_starlettes_headers(raw: list[tuple[bytes, bytes]]) -> None:
    ours = _header_dict({"headers": raw})
    theirs = Headers(raw=raw)
    for name in {n.decode() for n, _ in raw}:
        assert ours[name] == theirs.get(name)
    assert set(ours) == {n.decode() for n, _ in raw}


def test_a_repeated_header_reads_as_its_first_value() -> None:
    assert _header_dict({"headers": [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")]}) == {
        "authorization": "Bearer a"}
