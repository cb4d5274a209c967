"""The event contract: every record that travels on ml-connector's topics.

Each event is a frozen pydantic model serialised as JSON (see ``shared.codec``). All carry the same
envelope so the audit can chain them: ``causation_id`` is the ``event_id`` of the event that directly
caused this one, ``correlation_id`` is shared by everything that descends from one poll run (or one
replay). ``event_type`` is the discriminator; ``schema_version`` is bumped on breaking changes only.

Facts are past tense (``CustomerChanged``); the one command keeps the product's name
(``MailchimpMemberUpsert``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "EVENT_TYPES",
    "AudienceMemberState",
    "CustomerChanged",
    "CustomerRejected",
    "CustomerSnapshot",
    "EmailOwnership",
    "Event",
    "MailchimpMemberUpsert",
    "MemberState",
    "MemberSyncFailed",
    "MemberSynced",
    "PollCheckpoint",
    "PollRunCompleted",
    "PollRunFailed",
    "customer_key",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


AwareUTC = Annotated[datetime, AfterValidator(_require_utc)]
"""A timezone-aware timestamp, normalised to UTC."""

RowValue = str | int | float | bool | None
"""A column value as read from SYSPRO (strings trimmed; dates as ISO strings)."""

ConnectionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
CustomerCode = Annotated[str, Field(min_length=1, max_length=64)]


def customer_key(connection_id: str, customer: str) -> bytes:
    """The Kafka key of every per-customer topic: keeps one customer's events in order end to end."""
    return f"{connection_id}:{customer}".encode()


class Event(BaseModel):
    """The envelope shared by every event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The current schema version of this event type; the codec refuses others.
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str
    schema_version: int = 1
    occurred_at: AwareUTC = Field(default_factory=utcnow)
    connection_id: ConnectionId
    causation_id: UUID | None = None
    correlation_id: UUID = Field(default_factory=uuid4)

    def key(self) -> bytes:
        """The Kafka key this event is published under."""
        raise NotImplementedError


class _CustomerEvent(Event):
    customer: CustomerCode

    def key(self) -> bytes:
        return customer_key(self.connection_id, self.customer)


# --- poller ---------------------------------------------------------------------------------------


class CustomerChanged(_CustomerEvent):
    """A customer row in SYSPRO was created, updated or deleted since the poller last saw it.

    ``row`` is the full after-image (trimmed strings); for ``deleted`` it is empty (the row is gone,
    and downstream state knows which member belonged to the customer).
    """

    event_type: Literal["CustomerChanged"] = "CustomerChanged"
    change: Literal["created", "updated", "deleted"]
    row: dict[str, RowValue]
    row_hash: str
    changed_columns: list[str] = Field(default_factory=list)
    run_id: UUID
    strategy: Literal["snapshot", "cursor"]


class CustomerSnapshot(_CustomerEvent):
    """The poller's last seen state of one customer (compacted; a tombstone deletes it).

    Only the hash is kept, not the row: the poller holds every customer's snapshot in memory, and a
    hash keeps that small at a million customers.
    """

    event_type: Literal["CustomerSnapshot"] = "CustomerSnapshot"
    row_hash: str
    source_version: str | None = None


class PollCheckpoint(Event):
    """Where a connection's poller stands (compacted, keyed by connection)."""

    event_type: Literal["PollCheckpoint"] = "PollCheckpoint"
    strategy: Literal["snapshot", "cursor"]
    cursor: str | None = None
    last_run_id: UUID
    last_completed_at: AwareUTC
    last_full_scan_at: AwareUTC | None = None
    rows_seen: int = 0

    def key(self) -> bytes:
        return self.connection_id.encode()


class PollRunCompleted(Event):
    """A poll run finished and its events and checkpoint were committed together."""

    event_type: Literal["PollRunCompleted"] = "PollRunCompleted"
    run_id: UUID
    strategy: Literal["snapshot", "cursor"]
    full_scan: bool
    started_at: AwareUTC
    rows_read: int
    odata_requests: int
    created: int
    updated: int
    deleted: int

    def key(self) -> bytes:
        return self.connection_id.encode()


class PollRunFailed(Event):
    """A poll run could not finish; the checkpoint did not advance."""

    event_type: Literal["PollRunFailed"] = "PollRunFailed"
    run_id: UUID
    started_at: AwareUTC
    reason: str
    detail: str

    def key(self) -> bytes:
        return self.connection_id.encode()


# --- mapper ---------------------------------------------------------------------------------------

StatusIfNew = Literal["subscribed", "pending"]
MemberAction = Literal["upsert", "archive", "unsubscribe"]


class MailchimpMemberUpsert(_CustomerEvent):
    """Command: make this customer's member in one audience look like this.

    The loader sends ``status_if_new`` only, never ``status`` on an existing member, except for
    ``action="unsubscribe"``. ``previous_email`` set means a rename: update the member found at the
    old address's hash.
    """

    event_type: Literal["MailchimpMemberUpsert"] = "MailchimpMemberUpsert"
    audience_id: str
    list_id: str
    email_address: str
    subscriber_hash: str
    previous_email: str | None = None
    status_if_new: StatusIfNew = "subscribed"
    action: MemberAction = "upsert"
    merge_fields: dict[str, Any] = Field(default_factory=dict)
    tags_add: list[str] = Field(default_factory=list)
    tags_remove: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    replay_of: UUID | None = None
    #: When the poller saw the change this command comes from: the start of the freshness clock.
    change_occurred_at: AwareUTC | None = None


class CustomerRejected(_CustomerEvent):
    """The mapper could not turn a customer into a member: what to fix in SYSPRO, and where."""

    event_type: Literal["CustomerRejected"] = "CustomerRejected"
    audience_id: str | None = None
    reason: Literal[
        "no_email",
        "invalid_email",
        "duplicate_email",
        "unmappable",
        "excluded_by_policy",
    ]
    field: str | None = None
    value: str | None = None
    owner: str | None = None
    detail: str = ""


class AudienceMemberState(BaseModel):
    """What the connector knows of one customer's member in one audience."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email_address: str | None = None
    subscriber_hash: str | None = None
    mailchimp_status: str | None = None
    archived: bool = False
    terminal: bool = False
    tags: list[str] = Field(default_factory=list)


class MemberState(_CustomerEvent):
    """The mapper's memory of a customer across audiences (compacted)."""

    event_type: Literal["MemberState"] = "MemberState"
    audiences: dict[str, AudienceMemberState] = Field(default_factory=dict)


class EmailOwnership(Event):
    """Which customer owns an email address in an audience (compacted; tombstone frees it)."""

    event_type: Literal["EmailOwnership"] = "EmailOwnership"
    audience_id: str
    subscriber_hash: str
    customer: CustomerCode
    claimed_at: AwareUTC = Field(default_factory=utcnow)

    def key(self) -> bytes:
        return f"{self.connection_id}:{self.audience_id}:{self.subscriber_hash}".encode()


# --- loader ---------------------------------------------------------------------------------------


class MemberSynced(_CustomerEvent):
    """A command took effect in Mailchimp (``causation_id`` is the command's ``event_id``)."""

    event_type: Literal["MemberSynced"] = "MemberSynced"
    audience_id: str
    list_id: str
    email_address: str
    subscriber_hash: str
    outcome: Literal["created", "updated", "renamed", "archived", "unsubscribed", "unchanged"]
    mailchimp_status: str
    changed: list[str] = Field(default_factory=list)
    attempts: int = 1
    via: Literal["member", "batch"] = "member"
    command_occurred_at: AwareUTC | None = None


class MemberSyncFailed(_CustomerEvent):
    """A command did not take effect; ``permanent`` failures are also dead-lettered."""

    event_type: Literal["MemberSyncFailed"] = "MemberSyncFailed"
    audience_id: str
    list_id: str
    email_address: str
    subscriber_hash: str
    permanent: bool
    reason: str
    detail: str = ""
    http_status: int | None = None
    mailchimp_status: str | None = None
    response: dict[str, Any] | None = None
    attempts: int = 1


EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["event_type"].default: cls
    for cls in (
        CustomerChanged,
        CustomerSnapshot,
        PollCheckpoint,
        PollRunCompleted,
        PollRunFailed,
        MailchimpMemberUpsert,
        CustomerRejected,
        MemberState,
        EmailOwnership,
        MemberSynced,
        MemberSyncFailed,
    )
}
"""Every event type the codec knows, by its ``event_type`` discriminator."""
