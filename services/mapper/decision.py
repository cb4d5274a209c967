"""The vocabulary of a decision: its input, its result, and the context that builds the result.

``DecisionContext`` is what each audience rule in ``decide`` writes through: it knows the change and the
ownership view, and turns a rule's outcome into ``Command``/``Rejection``/``Claim`` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Protocol
from uuid import UUID

from services.mapper.plan import AudiencePlan
from services.mapper.records import (
    AudienceMemory,
    Claim,
    Command,
    CustomerMemory,
    MemberAction,
    Rejection,
    RejectReason,
)
from shared.events import RowValue

__all__ = ["CustomerInput", "Decision", "DecisionContext", "OwnerLookup"]


class OwnerLookup(Protocol):
    def __call__(self, audience_id: str, subscriber_hash: str) -> str | None:
        """The customer owning the address in the audience, or None when it is free."""


@dataclass(frozen=True, slots=True)
class CustomerInput:
    """A customer change as the decision needs it (the shell builds it from ``CustomerChanged``)."""

    connection_id: str
    customer: str
    change: Literal["created", "updated", "deleted"]
    row: dict[str, RowValue]
    causation_id: UUID | None
    correlation_id: UUID
    occurred_at: str | None = None


@dataclass(slots=True)
class Decision:
    commands: list[Command] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    #: The customer's members after the change, or None when nothing changed.
    memory: CustomerMemory | None = None
    claims: list[Claim] = field(default_factory=list)
    releases: list[Claim] = field(default_factory=list)
    #: Addresses another customer owns that this customer waits for.
    waiting: list[Claim] = field(default_factory=list)


class DecisionContext:
    """What every audience decision of one change shares."""

    __slots__ = ("decision", "inp", "owner_of", "today", "wake")

    def __init__(self, inp: CustomerInput, owner_of: OwnerLookup, today: date, wake: bool) -> None:
        self.inp = inp
        self.owner_of = owner_of
        self.today = today
        self.wake = wake
        self.decision = Decision()

    def reject(
        self,
        ap: AudiencePlan,
        reason: RejectReason,
        detail: str,
        *,
        value: str | None = None,
        owner: str | None = None,
        customer: str | None = None,
        email_field: bool = True,
    ) -> None:
        column = ap.audience.email.column if email_field else None
        self.decision.rejections.append(Rejection(ap.id, reason, detail, column, value, owner, customer))

    def command(
        self,
        ap: AudiencePlan,
        st: AudienceMemory,
        *,
        action: MemberAction,
        email: str | None = None,
        subscriber_hash: str | None = None,
        previous_email: str | None = None,
        merge_fields: dict[str, Any] | None = None,
        tags_add: tuple[str, ...] = (),
        tags_remove: tuple[str, ...] = (),
        notes: tuple[str, ...] = (),
    ) -> None:
        """A command for the member at ``email`` (by default the one in state)."""
        audience = ap.audience
        self.decision.commands.append(
            Command(
                audience.id,
                audience.list_id,
                email or st.email_address or "",
                subscriber_hash or st.subscriber_hash or "",
                audience.status_if_new,
                action,
                previous_email,
                merge_fields if merge_fields is not None else {},
                tags_add,
                tags_remove,
                notes,
            )
        )

    def holds(self, ap: AudiencePlan, st: AudienceMemory) -> bool:
        """Whether the member in state is still this customer's (nobody else took its address)."""
        if st.subscriber_hash is None or st.email_address is None:
            return False
        return self.owner_of(ap.id, st.subscriber_hash) in (None, self.inp.customer)

    def release(self, ap: AudiencePlan, subscriber_hash: str) -> None:
        if self.owner_of(ap.id, subscriber_hash) == self.inp.customer:
            self.decision.releases.append(Claim(ap.id, subscriber_hash))
