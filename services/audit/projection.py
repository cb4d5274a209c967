"""Consumed records to audit rows: pure, no I/O.

Every record becomes exactly one row of the ``events`` table, whatever it holds:
- a decodable event -> kind ``event`` (its JSON kept as it was on the topic);
- bytes the codec refuses -> kind ``undecodable`` with the codec's reason code, the bytes kept raw;
- a dead letter -> kind ``dead_letter`` with the ``mlc.error.*`` headers, its original decoded when it
  can be (so a dead-lettered command shows up in its customer's timeline).
Nothing is dropped here: deciding that a row repeats one already stored is the store's job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from shared.codec import DecodeError, decode
from shared.events import (
    CustomerChanged,
    CustomerRejected,
    Event,
    MailchimpMemberUpsert,
    MemberSynced,
    MemberSyncFailed,
    PollRunCompleted,
    PollRunFailed,
)
from shared.kafka import DLQ_HEADER_PREFIX
from shared.topics import ALL_TOPICS, DEAD_LETTER

_TOPICS = {spec.name: spec for spec in ALL_TOPICS}

__all__ = ["ConsumedRecord", "Projected", "customer_from_key", "project_record", "project_records"]


class ConsumedRecord(NamedTuple):
    """A Kafka record as the shell hands it over (topic without the deployment's namespace).

    A named tuple rather than a frozen dataclass: one is made per record, and this is cheaper to build.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(slots=True)
class Projected:
    """One record's ``events`` row, with the decoded event the read models are built from."""

    row: dict[str, Any]
    #: The event itself (kind ``event``).
    event: Event | None = None
    #: The decoded original of a dead letter, when its bytes are an event.
    dead_letter_of: Event | None = None


def customer_from_key(key: bytes | None) -> tuple[str | None, str | None]:
    """``connection_id:customer`` keys name who an undecodable record was about, when they parse."""
    if not key:
        return None, None
    try:
        text = key.decode()
    except UnicodeDecodeError:
        return None, None
    connection, sep, customer = text.partition(":")
    if not sep or not connection or not customer or len(connection) > 64 or len(customer) > 64:
        return (text[:64] or None), None
    return connection, customer


def _event_fields(event: Event) -> dict[str, Any]:
    """The columns every event fills, plus what its type adds."""
    # Fields live in the model's __dict__; getattr with a default on a pydantic model raises and
    # catches internally for absent ones, which costs more than the rest of this function.
    values = event.__dict__
    causation_id = event.causation_id
    outcome, reason, detail = _outcome(event)
    return {
        "event_type": event.event_type,
        "connection_id": event.connection_id,
        "customer": values.get("customer"),
        "audience_id": values.get("audience_id"),
        "occurred_at": event.occurred_at,
        "causation_id": str(causation_id) if causation_id else None,
        "correlation_id": str(event.correlation_id),
        "outcome": outcome,
        "reason": reason,
        "detail": detail,
    }


def _outcome(event: Event) -> tuple[str | None, str | None, str | None]:
    """What an event's type adds: its (outcome, reason, detail) columns."""
    if isinstance(event, CustomerChanged):
        return event.change, None, None
    if isinstance(event, MailchimpMemberUpsert):
        return event.action, None, None
    if isinstance(event, MemberSynced):
        return event.outcome, None, None
    if isinstance(event, MemberSyncFailed):
        return "permanent" if event.permanent else "transient", event.reason[:64], event.detail or None
    if isinstance(event, CustomerRejected):
        return None, event.reason, event.detail or None
    if isinstance(event, PollRunCompleted):
        return "completed", None, None
    if isinstance(event, PollRunFailed):
        return "failed", event.reason[:64], event.detail or None
    return None, None, None


def _event_row(rec: ConsumedRecord, event: Event, recorded_at: datetime) -> dict[str, Any]:
    """The row of a decoded event: this runs for nearly every record."""
    return {
        "topic": rec.topic,
        "kafka_partition": rec.partition,
        "kafka_offset": rec.offset,
        "kind": "event",
        "event_id": str(event.event_id),
        "ref_event_id": None,
        **_event_fields(event),
        "source_topic": None,
        # orjson accepted the bytes, so they are valid UTF-8 JSON: keep them exactly as sent.
        "payload": rec.value.decode() if rec.value is not None else None,
        "raw": None,
        "headers": None,
        "recorded_at": recorded_at,
    }


_BLANK_ROW: dict[str, Any] = dict.fromkeys(
    (
        "event_id",
        "ref_event_id",
        "event_type",
        "connection_id",
        "customer",
        "audience_id",
        "causation_id",
        "correlation_id",
        "outcome",
        "reason",
        "detail",
        "source_topic",
        "payload",
        "raw",
        "headers",
    )
)


def _blank_row(rec: ConsumedRecord, recorded_at: datetime) -> dict[str, Any]:
    row = _BLANK_ROW.copy()
    row["topic"] = rec.topic
    row["kafka_partition"] = rec.partition
    row["kafka_offset"] = rec.offset
    row["kind"] = "event"
    row["recorded_at"] = recorded_at
    if rec.timestamp_ms is not None and rec.timestamp_ms >= 0:
        row["occurred_at"] = datetime.fromtimestamp(rec.timestamp_ms / 1000, UTC)
    else:
        row["occurred_at"] = recorded_at
    return row


def _project_dead_letter(rec: ConsumedRecord, row: dict[str, Any], namespace: str) -> Projected:
    headers = {name: value.decode("utf-8", "replace") for name, value in rec.headers}
    row["kind"] = "dead_letter"
    row["headers"] = orjson.dumps(headers).decode()
    row["reason"] = headers.get(DLQ_HEADER_PREFIX + "reason", "unknown")[:64]
    row["detail"] = headers.get(DLQ_HEADER_PREFIX + "message")
    source = headers.get(DLQ_HEADER_PREFIX + "topic")
    row["source_topic"] = source.removeprefix(namespace)[:255] if source else None
    row["outcome"] = headers.get(DLQ_HEADER_PREFIX + "stage", "")[:32] or None
    try:
        original = decode(rec.value)
    except DecodeError as exc:
        row["raw"] = rec.value
        row["event_type"] = exc.event_type
        row["connection_id"], row["customer"] = customer_from_key(rec.key)
        return Projected(row)
    fields = _event_fields(original)
    for name in ("event_type", "connection_id", "customer", "audience_id", "causation_id", "correlation_id"):
        row[name] = fields[name]
    row["ref_event_id"] = str(original.event_id)
    row["payload"] = rec.value.decode() if rec.value is not None else None
    return Projected(row, dead_letter_of=original)


def project_record(rec: ConsumedRecord, recorded_at: datetime, namespace: str = "") -> Projected:
    """The ``events`` row of one consumed record (never raises for bad bytes)."""
    if rec.topic == DEAD_LETTER.name:
        return _project_dead_letter(rec, _blank_row(rec, recorded_at), namespace)
    try:
        event = decode(rec.value)
    except DecodeError as exc:
        row = _blank_row(rec, recorded_at)
        row["kind"] = "undecodable"
        row["reason"] = exc.reason
        row["detail"] = exc.message[:2000]
        row["event_type"] = exc.event_type[:64] if exc.event_type else None
        row["raw"] = rec.value
        row["connection_id"], row["customer"] = customer_from_key(rec.key)
        return Projected(row)
    spec = _TOPICS.get(rec.topic)
    if spec is not None and spec.value_types and not isinstance(event, spec.value_types):
        row = _blank_row(rec, recorded_at)
        row["kind"] = "undecodable"
        row["reason"] = "unexpected_type"
        row["detail"] = f"{event.event_type} does not belong on {rec.topic}"
        row["event_type"] = event.event_type
        row["raw"] = rec.value
        row["connection_id"], row["customer"] = customer_from_key(rec.key)
        return Projected(row)
    return Projected(_event_row(rec, event, recorded_at), event=event)


def project_records(
    records: Sequence[ConsumedRecord], recorded_at: datetime, namespace: str = ""
) -> list[Projected]:
    return [project_record(rec, recorded_at, namespace) for rec in records]
