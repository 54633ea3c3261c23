"""Event payloads: a message event's remembered ``sender`` is the bytes the whole payload would have had."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.server.services.payloads import identifier_kind, message_event
from threadline.store.records import MessageRecord

#: Raw ids of every kind the SDKs know, and arbitrary text.
RAW_IDS = st.one_of(
    st.text(max_size=80),
    st.builds(lambda rest: f"8:acs:{rest}", st.text(max_size=60)),
    st.builds(lambda rest: f"4:{rest}", st.text(max_size=20)),
    st.builds(lambda rest: f"8:orgid:{rest}", st.text(max_size=40)),
    st.builds(lambda rest: f"28:{rest}", st.text(max_size=40)),
)


@settings(max_examples=300, deadline=None)
@given(sender=RAW_IDS, again=st.booleans())
def test_a_message_events_sender_is_the_identifier_kind_of_its_raw_id(sender: str, again: bool) -> None:
    message = MessageRecord("19:t@thread.v2", "1700000000000", 3, "text", 1_700_000_000_000, 1,
                            sender_id=sender, content="hi")
    if again:  # the second payload of the same sender comes from the cache
        message_event("chatMessageReceived", message)
    [(kind, payload)] = message_event("chatMessageReceived", message)
    body = json.loads(payload)
    assert kind == "chatMessageReceived"
    assert body["sender"] == identifier_kind(sender)
    assert list(body)[:3] == ["threadId", "sender", "senderDisplayName"]
    assert body["createdOn"] == "2023-11-14T22:13:20Z"
    assert body["sequenceId"] == "3"
