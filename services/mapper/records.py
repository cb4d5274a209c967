"""The mapper's working records: what ``decide`` and ``learn`` produce and the state they read.

They mirror the contract's events field for field (``MailchimpMemberUpsert``, ``CustomerRejected``,
``AudienceMemberState``) without the envelope, as plain slotted dataclasses: building and validating a
pydantic event costs more than mapping the row, and the mapper builds three per customer. ``wire``
adds the envelope and encodes them; tests decode that output with the strict codec, so the two cannot
drift apart unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shared.events import AudienceMemberState, MemberState

__all__ = [
    "AudienceMemory",
    "Claim",
    "Command",
    "CustomerMemory",
    "MemberAction",
    "RejectReason",
    "Rejection",
    "memory_from_state",
]

MemberAction = Literal["upsert", "archive", "unsubscribe"]
RejectReason = Literal["no_email", "invalid_email", "duplicate_email", "unmappable", "excluded_by_policy"]


@dataclass(frozen=True, slots=True)
class AudienceMemory:
    """``AudienceMemberState``: the customer's member in one audience, as the mapper last commanded it."""

    email_address: str | None = None
    subscriber_hash: str | None = None
    mailchimp_status: str | None = None
    archived: bool = False
    terminal: bool = False
    tags: tuple[str, ...] = ()


CustomerMemory = dict[str, AudienceMemory]
"""A customer's members by audience id (``MemberState.audiences``)."""


def memory_from_state(state: MemberState) -> CustomerMemory:
    return {aid: _audience(st) for aid, st in state.audiences.items()}


def _audience(st: AudienceMemberState) -> AudienceMemory:
    return AudienceMemory(
        st.email_address, st.subscriber_hash, st.mailchimp_status, st.archived, st.terminal, tuple(st.tags)
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """An address in an audience (the key of ``EmailOwnership``)."""

    audience_id: str
    subscriber_hash: str


@dataclass(frozen=True, slots=True)
class Command:
    """``MailchimpMemberUpsert`` without the envelope and customer."""

    audience_id: str
    list_id: str
    email_address: str
    subscriber_hash: str
    status_if_new: Literal["subscribed", "pending"]
    action: MemberAction = "upsert"
    previous_email: str | None = None
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags_add: tuple[str, ...] = ()
    tags_remove: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejection:
    """``CustomerRejected`` without the envelope; ``customer`` is set when it is about another customer."""

    audience_id: str | None
    reason: RejectReason
    detail: str
    field: str | None = None
    value: str | None = None
    owner: str | None = None
    customer: str | None = None
