"""The mapper's own encoding and decoding agree with the contract's models and the strict codec."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.mapper.pipeline import decode_change
from services.mapper.records import AudienceMemory, Claim, Command, Rejection
from services.mapper.wire import (
    Envelope,
    Stamp,
    encode_command,
    encode_memory,
    encode_ownership,
    encode_rejection,
)
from shared.codec import DecodeError, decode
from shared.events import (
    CustomerChanged,
    CustomerRejected,
    EmailOwnership,
    MailchimpMemberUpsert,
    MemberState,
)
from tests.mapper.factories import change

ENV = Envelope("acme", "000019", uuid.uuid4(), uuid.uuid4())


@pytest.mark.parametrize(
    ("data", "model"),
    [
        (
            encode_command(
                ENV,
                Stamp.now(),
                Command(
                    "main",
                    "L1",
                    "a@b.co",
                    "h" * 32,
                    "pending",
                    "archive",
                    "o@b.co",
                    {"FNAME": "Zoë", "ADDRESS": {"addr1": "1"}},
                    ("t",),
                    ("u",),
                    ("n",),
                ),
            ),
            MailchimpMemberUpsert,
        ),
        (
            encode_rejection(
                ENV, Stamp.now(), Rejection("main", "duplicate_email", "why", "Email", "v", "000001")
            ),
            CustomerRejected,
        ),
        (encode_rejection(ENV, Stamp.now(), Rejection(None, "unmappable", "why")), CustomerRejected),
        (
            encode_memory(
                ENV,
                Stamp.now(),
                {"main": AudienceMemory("a@b.co", "h" * 32, "subscribed", True, True, ("t",))},
            ),
            MemberState,
        ),
        (encode_ownership(ENV, Stamp.now(), Claim("main", "h" * 32)), EmailOwnership),
    ],
)
def test_encoded_records_are_valid_events_with_every_field_of_their_model(
    data: bytes, model: type[Any]
) -> None:
    event = decode(data)
    assert type(event) is model
    raw = orjson.loads(data)
    assert set(raw) == set(model.model_fields)
    assert orjson.loads(event.model_dump_json()) == raw
    assert event.connection_id == "acme" and event.causation_id == ENV.causation_id


def test_event_ids_are_unique_version_4_uuids() -> None:
    ids = {decode(encode_ownership(ENV, Stamp.now(), Claim("main", "h"))).event_id for _ in range(2000)}
    assert len(ids) == 2000 and {i.version for i in ids} == {4}


_VALID = orjson.loads(change("000019").model_dump_json())
_MUTATIONS = st.one_of(
    st.tuples(
        st.sampled_from(sorted(_VALID)), st.sampled_from([None, 1, "x", [], {}, True, "", 1.5, "2024-01-01"])
    ),
    st.tuples(
        st.just("row"),
        st.dictionaries(
            st.text(max_size=5),
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(allow_nan=False),
                st.text(max_size=5),
                st.lists(st.none()),
                st.dictionaries(st.text(max_size=2), st.none(), max_size=1),
            ),
            max_size=3,
        ),
    ),
    st.tuples(st.just("extra_field"), st.just(1)),
    st.tuples(st.just("__delete__"), st.sampled_from(sorted(_VALID))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_MUTATIONS, max_size=3))
def test_the_fast_decoder_accepts_and_refuses_exactly_what_the_codec_does(
    mutations: list[tuple[str, Any]],
) -> None:
    obj = dict(_VALID)
    for name, value in mutations:
        if name == "__delete__":
            obj.pop(value, None)
        else:
            obj[name] = value
    data = json.dumps(obj).encode()
    try:
        expected = decode(data)
    except DecodeError as exc:
        with pytest.raises(DecodeError) as raised:
            decode_change(data)
        assert raised.value.reason == exc.reason
        return
    if not isinstance(expected, CustomerChanged):
        with pytest.raises(DecodeError):
            decode_change(data)
        return
    got = decode_change(data)
    assert (got.customer, got.change, got.row) == (expected.customer, expected.change, expected.row)
    if "event_id" in obj:  # else both made up a fresh one
        assert got.causation_id == expected.event_id


@pytest.mark.parametrize(
    "data", [None, b"", b"not json", b"[]", b'{"event_type": "Nope", "schema_version": 1}']
)
def test_garbage_is_refused_with_the_codecs_reason(data: bytes | None) -> None:
    with pytest.raises(DecodeError) as raised:
        decode_change(data)
    with pytest.raises(DecodeError) as expected:
        decode(data)
    assert raised.value.reason == expected.value.reason
