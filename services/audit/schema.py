"""The audit store's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

``events`` is the log: one row per consumed Kafka record, unique on its position and on its event id,
so a record is stored once however often it is delivered. The other tables are read models kept in the
same transaction as the rows that change them: ``sync_state`` (per customer and audience),
``customers`` (what SYSPRO last said about each customer), ``runs`` (per poll run or replay) and
``positions`` (the last stored offset per partition, where the projection resumes).

The schema is created and changed only by the migrations in ``services/audit/migrations``; these
definitions must match the latest migration (a contract test compares them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeEngine

__all__ = [
    "ALL_AUDIENCES",
    "UtcDateTime",
    "customers",
    "events",
    "metadata",
    "positions",
    "runs",
    "sync_state",
]

ALL_AUDIENCES = "*"
"""The ``sync_state.audience_id`` of a rejection that applies to every audience of a customer."""


class _SqliteIsoDateTime(sqlite.DATETIME):
    """SQLite DATETIME column whose text ``UtcDateTime`` writes and parses itself.

    SQLAlchemy's own SQLite datetime processors format in Python, field by field; ``isoformat`` and
    ``fromisoformat`` are C and several times faster on the write path, with the same text.
    """

    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend.

    SQLite has no time zone type: values are stored there as naive UTC text
    (``YYYY-MM-DD HH:MM:SS.ffffff``), which sorts and compares correctly in SQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return _SqliteIsoDateTime()  # type: ignore[no-untyped-call]
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is not UTC:
            if value.tzinfo is None:
                raise ValueError("UtcDateTime needs an aware datetime")
            value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# SQLite makes an INTEGER PRIMARY KEY the rowid (no separate index); BIGINT would not be.
_Id = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    #: event | undecodable | dead_letter | duplicate
    Column("kind", String(16), nullable=False),
    #: Set only for kind "event": the one row of that event.
    Column("event_id", String(36), nullable=True),
    #: The event a row is about when it is not that event itself: a dead letter's original, or the
    #: event a duplicate delivery repeated.
    Column("ref_event_id", String(36), nullable=True),
    Column("event_type", String(64), nullable=True),
    Column("connection_id", String(64), nullable=True),
    Column("customer", String(64), nullable=True),
    Column("audience_id", String(64), nullable=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("causation_id", String(36), nullable=True),
    Column("correlation_id", String(36), nullable=True),
    #: created/updated/deleted, the command's action, or the sync outcome.
    Column("outcome", String(32), nullable=True),
    #: Rejection or failure reason, decode error code, or dead-letter reason.
    Column("reason", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    #: Source topic of a dead letter (from its ``mlc.error.topic`` header).
    Column("source_topic", String(255), nullable=True),
    #: The event's JSON as it was on the topic (decodable records only).
    Column("payload", Text, nullable=True),
    #: The record's bytes when they are not a decodable event.
    Column("raw", LargeBinary, nullable=True),
    #: JSON object of the record's headers (dead letters only).
    Column("headers", Text, nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    UniqueConstraint("topic", "kafka_partition", "kafka_offset", name="uq_events_position"),
    UniqueConstraint("event_id", name="uq_events_event_id"),
)
Index("ix_events_customer", events.c.connection_id, events.c.customer, events.c.occurred_at)
# Partial: only the rare rows that are not events (undecodable, dead letters, duplicates) are indexed,
# so the index costs the write path next to nothing.
_NOT_EVENT = text("kind <> 'event'")
Index(
    "ix_events_problems",
    events.c.kind,
    events.c.occurred_at,
    sqlite_where=_NOT_EVENT,
    postgresql_where=_NOT_EVENT,
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("connection_id", String(64), primary_key=True),
    Column("customer", String(64), primary_key=True),
    Column("audience_id", String(64), primary_key=True),
    #: in_sync | pending | failed | rejected | excluded
    Column("status", String(16), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Column("list_id", String(64), nullable=True),
    #: The address the latest command asked for (the mapper's reading of SYSPRO).
    Column("email_address", String(320), nullable=True),
    Column("action", String(16), nullable=True),
    #: The member as the connector last saw it in Mailchimp (last successful result).
    Column("member_email", String(320), nullable=True),
    Column("member_present", Boolean, nullable=False),
    Column("mailchimp_status", String(32), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("http_status", Integer, nullable=True),
    Column("attempts", Integer, nullable=True),
    Column("command_id", String(36), nullable=True),
    Column("command_at", UtcDateTime, nullable=True),
    Column("result_id", String(36), nullable=True),
    Column("result_at", UtcDateTime, nullable=True),
    Column("result_command_id", String(36), nullable=True),
    Column("result_reason", String(64), nullable=True),
    Column("result_detail", Text, nullable=True),
    Column("rejection_id", String(36), nullable=True),
    Column("rejection_at", UtcDateTime, nullable=True),
    Column("rejection_reason", String(64), nullable=True),
    Column("rejection_detail", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)
Index("ix_sync_state_status", sync_state.c.status, sync_state.c.reason)
Index("ix_sync_state_audience", sync_state.c.connection_id, sync_state.c.audience_id, sync_state.c.status)

customers = Table(
    "customers",
    metadata,
    Column("connection_id", String(64), primary_key=True),
    Column("customer", String(64), primary_key=True),
    Column("last_change", String(16), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("row_hash", String(128), nullable=True),
    Column("change_id", String(36), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    #: The poll run id, or a replay id (the correlation id its commands carry).
    Column("run_id", String(36), primary_key=True),
    #: poll | replay | NULL while only descendants have been seen.
    Column("kind", String(16), nullable=True),
    Column("connection_id", String(64), nullable=True),
    #: completed | failed | NULL while no PollRun event has been seen.
    Column("status", String(16), nullable=True),
    Column("strategy", String(16), nullable=True),
    Column("full_scan", Boolean, nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("rows_read", Integer, nullable=True),
    Column("odata_requests", Integer, nullable=True),
    Column("created", Integer, nullable=True),
    Column("updated", Integer, nullable=True),
    Column("deleted", Integer, nullable=True),
    Column("reason", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Column("changes", Integer, nullable=False),
    Column("commands", Integer, nullable=False),
    Column("synced", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("dead_letters", Integer, nullable=False),
    Column("first_event_at", UtcDateTime, nullable=True),
    Column("last_event_at", UtcDateTime, nullable=True),
)
Index("ix_runs_first_event", runs.c.first_event_at)

positions = Table(
    "positions",
    metadata,
    Column("topic", String(255), primary_key=True),
    Column("kafka_partition", Integer, primary_key=True),
    #: The offset of the last record stored from this partition.
    Column("kafka_offset", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
