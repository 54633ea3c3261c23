"""Identifiers: ours against the official ``identifier_from_raw_id`` and the wire format."""

from __future__ import annotations

import azure.communication.chat as official
import azure.communication.identity as official_identity
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline import chat, identity
from threadline._shared.identifier_wire import identifier_from_wire, identifier_to_wire
from threadline.protocol import wire

PREFIXES = [
    "8:acs:", "8:dod-acs:", "8:gcch-acs:", "8:spool:", "4:", "4:+", "8:orgid:", "8:dod:", "8:gcch:",
    "8:teamsvisitor:", "28:orgid:", "28:dod:", "28:gcch:", "28:", "28:dod-global:", "28:gcch-global:",
    "8:", "", ":", "8:acs", "19:",
]

raw_ids = st.one_of(
    st.text(max_size=40),
    st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES), st.text(max_size=30)),
    st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES),
              st.text(alphabet="abcdef0123456789-_:+@.", max_size=40)),
)

EXAMPLES = [
    "8:acs:8540c0de-899f-5cce-acb5-3ec493af3800_0e59221d-0c1d-46ae-9544-c963ce56c10b",
    "8:gcch-acs:r_u", "8:dod-acs:r_u", "8:spool:r_u", "4:+14255550123", "4:", "8:orgid:oid",
    "8:dod:oid", "8:gcch:oid", "8:teamsvisitor:v", "28:orgid:app", "28:dod:app", "28:gcch:app",
    "28:legacybot", "28:dod-global:x", "8:acs", "garbage", "", "8:acs:", "8:orgid:a:b:c",
]


def _same(ours: object, theirs: object) -> None:
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.raw_id == theirs.raw_id  # type: ignore[attr-defined]
    assert ours.kind == theirs.kind  # type: ignore[attr-defined]
    assert str(ours.kind.value) == str(theirs.kind.value)  # type: ignore[attr-defined]
    mine = {k: getattr(v, "value", v) for k, v in dict(ours.properties).items()}  # type: ignore[attr-defined]
    official_props = {k: getattr(v, "value", v) for k, v in dict(theirs.properties).items()}  # type: ignore[attr-defined]
    assert mine == official_props


@pytest.mark.parametrize("raw_id", EXAMPLES)
def test_known_raw_ids_match_the_official_parser(raw_id: str) -> None:
    _same(chat.identifier_from_raw_id(raw_id), official.identifier_from_raw_id(raw_id))
    _same(identity.identifier_from_raw_id(raw_id), official_identity.identifier_from_raw_id(raw_id))


@settings(max_examples=600, deadline=None)
@given(raw_ids)
def test_any_raw_id_matches_the_official_parser(raw_id: str) -> None:
    _same(chat.identifier_from_raw_id(raw_id), official.identifier_from_raw_id(raw_id))


@settings(max_examples=300, deadline=None)
@given(raw_ids)
def test_identifiers_round_trip_through_their_raw_id(raw_id: str) -> None:
    ident = chat.identifier_from_raw_id(raw_id)
    again = chat.identifier_from_raw_id(ident.raw_id)
    assert again == ident
    assert hash(again) == hash(ident)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (chat.CommunicationUserIdentifier("8:acs:x"), official.CommunicationUserIdentifier("8:acs:x")),
        (chat.PhoneNumberIdentifier("+1555"), official.PhoneNumberIdentifier("+1555")),
        (chat.MicrosoftTeamsUserIdentifier("oid"), official.MicrosoftTeamsUserIdentifier("oid")),
        (
            chat.MicrosoftTeamsUserIdentifier("oid", cloud=chat.CommunicationCloudEnvironment.GCCH),
            official.MicrosoftTeamsUserIdentifier("oid", cloud="GCCH"),
        ),
        (
            chat.MicrosoftTeamsUserIdentifier("v", is_anonymous=True),
            official.MicrosoftTeamsUserIdentifier("v", is_anonymous=True),
        ),
        (
            chat.MicrosoftTeamsAppIdentifier("app", cloud="DOD"),
            official.MicrosoftTeamsAppIdentifier("app", cloud="DOD"),
        ),
        (chat.UnknownIdentifier("x:y"), official.UnknownIdentifier("x:y")),
    ],
)
def test_constructed_identifiers_format_raw_ids_like_the_official(ours: object, theirs: object) -> None:
    _same(ours, theirs)
    assert ours == theirs  # equality works across the packages, by raw id


def test_equality_falls_back_to_properties_when_raw_id_is_empty() -> None:
    user = chat.CommunicationUserIdentifier("8:acs:x")
    other = chat.CommunicationUserIdentifier("8:acs:x", raw_id="")
    assert user == other
    assert user != chat.CommunicationUserIdentifier("8:acs:y")
    assert user != "8:acs:x"
    assert chat.PhoneNumberIdentifier("+1") == chat.PhoneNumberIdentifier("+1", raw_id="")


def test_chat_and_identity_export_the_same_classes() -> None:
    assert chat.CommunicationUserIdentifier is identity.CommunicationUserIdentifier
    assert isinstance(chat.CommunicationUserIdentifier("8:acs:x"), identity.CommunicationIdentifier)


def _wire_json(ident: object) -> dict[str, object]:
    return msgspec.json.decode(wire.encode(identifier_to_wire(ident)))  # type: ignore[arg-type,no-any-return]


def test_identifiers_go_on_the_wire_as_raw_id_plus_typed_form() -> None:
    assert _wire_json(chat.CommunicationUserIdentifier("8:acs:x")) == {
        "rawId": "8:acs:x", "communicationUser": {"id": "8:acs:x"}
    }
    assert _wire_json(chat.PhoneNumberIdentifier("+1555")) == {"rawId": "4:+1555", "phoneNumber": {"value": "+1555"}}
    assert _wire_json(chat.MicrosoftTeamsUserIdentifier("o", cloud="DOD")) == {
        "rawId": "8:dod:o", "microsoftTeamsUser": {"userId": "o", "isAnonymous": False, "cloud": "dod"}
    }
    assert _wire_json(chat.MicrosoftTeamsAppIdentifier("a")) == {
        "rawId": "28:orgid:a", "microsoftTeamsApp": {"appId": "a", "cloud": "public"}
    }
    assert _wire_json(chat.UnknownIdentifier("zz")) == {"rawId": "zz"}
    # identity objects of the official package are accepted too (duck typing)
    assert _wire_json(official.CommunicationUserIdentifier("8:acs:o")) == {
        "rawId": "8:acs:o", "communicationUser": {"id": "8:acs:o"}
    }


def test_a_non_identifier_is_refused_with_the_official_type_error() -> None:
    with pytest.raises(TypeError, match="Unsupported identifier type str"):
        identifier_to_wire("8:acs:x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "kind", "raw_id"),
    [
        ({"rawId": "8:acs:x", "communicationUser": {"id": "8:acs:x"}}, "communication_user", "8:acs:x"),
        ({"communicationUser": {"id": "8:acs:x"}}, "communication_user", "8:acs:x"),
        ({"rawId": "4:+1", "phoneNumber": {"value": "+1"}}, "phone_number", "4:+1"),
        ({"rawId": "8:gcch:o", "microsoftTeamsUser": {"userId": "o", "cloud": "gcch"}}, "microsoft_teams_user",
         "8:gcch:o"),
        ({"rawId": "28:orgid:a", "microsoftTeamsApp": {"appId": "a", "cloud": "public"}}, "microsoft_teams_app",
         "28:orgid:a"),
        ({"rawId": "8:acs:y"}, "communication_user", "8:acs:y"),
        ({"rawId": "zz", "kind": "somethingNew"}, "unknown", "zz"),
    ],
)
def test_identifiers_are_read_from_responses(body: dict[str, object], kind: str, raw_id: str) -> None:
    ident = identifier_from_wire(msgspec.convert(body, wire.Identifier))
    assert ident.kind.value == kind
    assert ident.raw_id == raw_id
    if kind == "microsoft_teams_user":
        assert ident.properties["cloud"] == chat.CommunicationCloudEnvironment.GCCH
