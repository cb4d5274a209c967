"""The audit's read models as the API, the command line and scripts see them (pydantic, JSON-ready)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AudienceReconciliation",
    "CustomerState",
    "FailureGroup",
    "Filters",
    "Page",
    "ReconcileItem",
    "RunSummary",
    "StoredEvent",
    "Timeline",
    "TimelineEntry",
]

T = TypeVar("T")

SyncStatus = Literal["in_sync", "pending", "failed", "rejected", "excluded"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Filters(_Model):
    """Filters shared by the list queries; ``None`` means "any"."""

    connection: str | None = None
    audience: str | None = None
    customers: list[str] = Field(default_factory=list)
    statuses: list[str] = Field(default_factory=list)
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class Page(_Model, Generic[T]):
    """One page of a list; ``next_offset`` is null on the last page."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = None


class CustomerState(_Model):
    """Where one customer stands in one audience (``audience_id`` ``*``: a rejection for all)."""

    connection_id: str
    customer: str
    audience_id: str
    status: SyncStatus
    reason: str | None = None
    detail: str | None = None
    email_address: str | None = Field(None, description="The address the latest command asked for.")
    member_email: str | None = Field(None, description="The member's address as last seen in Mailchimp.")
    member_present: bool = False
    mailchimp_status: str | None = None
    outcome: str | None = None
    http_status: int | None = None
    command_id: str | None = None
    command_at: datetime | None = None
    result_at: datetime | None = None
    rejection_at: datetime | None = None
    updated_at: datetime


class TimelineEntry(_Model):
    """One stored record about a customer, linked to the entry that caused it."""

    row_id: int
    kind: str
    topic: str
    partition: int
    offset: int
    event_type: str | None = None
    event_id: str | None = None
    causation_id: str | None = None
    correlation_id: str | None = None
    #: The ``event_id`` of the entry (in this timeline) that caused this one.
    parent: str | None = None
    depth: int = 0
    occurred_at: datetime
    audience_id: str | None = None
    outcome: str | None = None
    reason: str | None = None
    detail: str | None = None
    summary: str
    #: The Mailchimp response of a failed sync.
    response: dict[str, Any] | None = None
    payload: dict[str, Any] | None = None


class Timeline(_Model):
    connection_id: str | None
    customer: str
    entries: list[TimelineEntry]
    states: list[CustomerState]
    runs: list[RunSummary] = Field(default_factory=list)


class FailureGroup(_Model):
    """Customers (or records) failing for one reason."""

    source: Literal["sync", "dead_letter", "undecodable", "duplicate"]
    status: str
    reason: str | None
    topic: str | None = None
    count: int
    customers: list[str] = Field(default_factory=list, description="Up to five examples.")
    first_at: datetime | None = None
    last_at: datetime | None = None


class RunSummary(_Model):
    run_id: str
    kind: str | None = None
    connection_id: str | None = None
    status: str | None = None
    strategy: str | None = None
    full_scan: bool | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    rows_read: int | None = None
    created: int | None = None
    updated: int | None = None
    deleted: int | None = None
    reason: str | None = None
    detail: str | None = None
    changes: int = 0
    commands: int = 0
    synced: int = 0
    failed: int = 0
    rejected: int = 0
    dead_letters: int = 0
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None


class ReconcileItem(_Model):
    customer: str
    status: str | None = None
    reason: str | None = None
    email_address: str | None = None
    member_email: str | None = None


class AudienceReconciliation(_Model):
    """SYSPRO customers the connector has seen vs members it last saw in one Mailchimp audience."""

    connection_id: str
    audience_id: str
    customers_seen: int
    members_synced: int
    missing_count: int
    extra_count: int
    mismatched_count: int
    #: Missing customers by their sync status (``none``: no command or rejection seen).
    missing_by_status: dict[str, int]
    missing: list[ReconcileItem]
    extra: list[ReconcileItem]
    mismatched: list[ReconcileItem]


class StoredEvent(_Model):
    """A row of the audit log as stored (for ``/events``)."""

    row_id: int
    kind: str
    topic: str
    partition: int
    offset: int
    event_type: str | None = None
    event_id: str | None = None
    ref_event_id: str | None = None
    connection_id: str | None = None
    customer: str | None = None
    audience_id: str | None = None
    occurred_at: datetime
    recorded_at: datetime
    causation_id: str | None = None
    correlation_id: str | None = None
    outcome: str | None = None
    reason: str | None = None
    detail: str | None = None
    source_topic: str | None = None
    headers: dict[str, str] | None = None
    payload: dict[str, Any] | None = None
    raw: str | None = Field(None, description="Undecodable bytes, as text with invalid bytes escaped.")


Timeline.model_rebuild()
