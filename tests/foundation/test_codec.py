"""The codec: every event round-trips, through bytes and the real broker; bad bytes fail clearly."""

from __future__ import annotations

import orjson
import pytest

from shared.codec import DecodeError, decode, decode_as, encode
from shared.events import EVENT_TYPES, CustomerChanged, MemberSynced
from shared.settings import KafkaSettings
from shared.topics import ALL_TOPICS
from tests.foundation.samples import samples
from tests.helpers import produce, read_all


def test_samples_cover_every_event_type() -> None:
    assert {type(e).__name__ for e in samples()} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", samples(), ids=lambda e: type(e).__name__)
def test_every_event_round_trips_through_bytes(event: object) -> None:
    assert decode(encode(event)) == event  # type: ignore[arg-type]


async def test_every_event_round_trips_through_the_real_broker_on_its_own_topic(kafka: KafkaSettings) -> None:
    by_type = {t: spec for spec in ALL_TOPICS for t in spec.value_types}
    events = samples()
    for event in events:
        await produce(kafka, by_type[type(event)].name, [event])
    received = []
    for spec in {by_type[type(e)].name: by_type[type(e)] for e in events}.values():
        for record in await read_all(kafka, spec.name):
            event = decode_as(record.value, *spec.value_types)
            assert record.key == event.key()
            received.append(event)
    assert sorted(received, key=lambda e: str(e.event_id)) == sorted(events, key=lambda e: str(e.event_id))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "not_json"),
        (b"\x00\xffgarbage", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"hello": "world"}', "missing_event_type"),
        (b'{"event_type": "CustomerDeleted", "schema_version": 1}', "unknown_event_type"),
    ],
)
def test_garbage_is_refused_with_a_reason(data: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.reason == reason


def _mutated(**changes: object) -> bytes:
    obj = orjson.loads(encode(samples()[0]))
    for key, value in changes.items():
        if value is ...:
            obj.pop(key)
        else:
            obj[key] = value
    return orjson.dumps(obj)


def test_a_wrong_schema_version_is_refused_naming_the_version() -> None:
    with pytest.raises(DecodeError) as info:
        decode(_mutated(schema_version=2))
    assert info.value.reason == "unsupported_schema_version"
    assert "schema_version 2" in str(info.value)


def test_missing_fields_are_refused_naming_the_field() -> None:
    with pytest.raises(DecodeError) as info:
        decode(_mutated(customer=...))
    assert info.value.reason == "invalid_payload"
    assert "customer" in str(info.value)


def test_naive_timestamps_and_unknown_fields_are_refused() -> None:
    with pytest.raises(DecodeError, match="timezone-aware"):
        decode(_mutated(occurred_at="2026-03-01T12:00:00"))
    with pytest.raises(DecodeError, match="surprise"):
        decode(_mutated(surprise=1))


def test_a_valid_event_on_the_wrong_topic_is_refused() -> None:
    with pytest.raises(DecodeError) as info:
        decode_as(encode(samples()[0]), MemberSynced)
    assert info.value.reason == "unexpected_type"


def test_timestamps_are_normalised_to_utc() -> None:
    event = decode(_mutated(occurred_at="2026-03-01T14:00:00+02:00"))
    assert isinstance(event, CustomerChanged)
    assert event.occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.occurred_at.hour == 12
