"""The initial audit schema: the event log, its read models and the stored positions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from services.audit.schema import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=True),
        sa.Column("ref_event_id", sa.String(36), nullable=True),
        sa.Column("event_type", sa.String(64), nullable=True),
        sa.Column("connection_id", sa.String(64), nullable=True),
        sa.Column("customer", sa.String(64), nullable=True),
        sa.Column("audience_id", sa.String(64), nullable=True),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("causation_id", sa.String(36), nullable=True),
        sa.Column("correlation_id", sa.String(36), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("source_topic", sa.String(255), nullable=True),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("raw", sa.LargeBinary, nullable=True),
        sa.Column("headers", sa.Text, nullable=True),
        sa.Column("recorded_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("topic", "kafka_partition", "kafka_offset", name="uq_events_position"),
        sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    )
    op.create_index("ix_events_customer", "events", ["connection_id", "customer", "occurred_at"])
    not_event = sa.text("kind <> 'event'")
    op.create_index(
        "ix_events_problems",
        "events",
        ["kind", "occurred_at"],
        sqlite_where=not_event,
        postgresql_where=not_event,
    )

    op.create_table(
        "sync_state",
        sa.Column("connection_id", sa.String(64), primary_key=True),
        sa.Column("customer", sa.String(64), primary_key=True),
        sa.Column("audience_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("list_id", sa.String(64), nullable=True),
        sa.Column("email_address", sa.String(320), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("member_email", sa.String(320), nullable=True),
        sa.Column("member_present", sa.Boolean, nullable=False),
        sa.Column("mailchimp_status", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=True),
        sa.Column("command_id", sa.String(36), nullable=True),
        sa.Column("command_at", UtcDateTime, nullable=True),
        sa.Column("result_id", sa.String(36), nullable=True),
        sa.Column("result_at", UtcDateTime, nullable=True),
        sa.Column("result_command_id", sa.String(36), nullable=True),
        sa.Column("result_reason", sa.String(64), nullable=True),
        sa.Column("result_detail", sa.Text, nullable=True),
        sa.Column("rejection_id", sa.String(36), nullable=True),
        sa.Column("rejection_at", UtcDateTime, nullable=True),
        sa.Column("rejection_reason", sa.String(64), nullable=True),
        sa.Column("rejection_detail", sa.Text, nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_sync_state_status", "sync_state", ["status", "reason"])
    op.create_index("ix_sync_state_audience", "sync_state", ["connection_id", "audience_id", "status"])

    op.create_table(
        "customers",
        sa.Column("connection_id", sa.String(64), primary_key=True),
        sa.Column("customer", sa.String(64), primary_key=True),
        sa.Column("last_change", sa.String(16), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("row_hash", sa.String(128), nullable=True),
        sa.Column("change_id", sa.String(36), nullable=False),
        sa.Column("changed_at", UtcDateTime, nullable=False),
        sa.Column("first_seen_at", UtcDateTime, nullable=False),
    )

    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("connection_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("strategy", sa.String(16), nullable=True),
        sa.Column("full_scan", sa.Boolean, nullable=True),
        sa.Column("started_at", UtcDateTime, nullable=True),
        sa.Column("finished_at", UtcDateTime, nullable=True),
        sa.Column("rows_read", sa.Integer, nullable=True),
        sa.Column("odata_requests", sa.Integer, nullable=True),
        sa.Column("created", sa.Integer, nullable=True),
        sa.Column("updated", sa.Integer, nullable=True),
        sa.Column("deleted", sa.Integer, nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("changes", sa.Integer, nullable=False),
        sa.Column("commands", sa.Integer, nullable=False),
        sa.Column("synced", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("dead_letters", sa.Integer, nullable=False),
        sa.Column("first_event_at", UtcDateTime, nullable=True),
        sa.Column("last_event_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_runs_first_event", "runs", ["first_event_at"])

    op.create_table(
        "positions",
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("kafka_partition", sa.Integer, primary_key=True),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in ("positions", "runs", "customers", "sync_state", "events"):
        op.drop_table(table)
