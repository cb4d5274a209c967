"""Where each customer stands in each audience, derived from the latest events: pure, no I/O.

A row remembers three things independently: the latest command (what the mapper asked for), the latest
result (what the loader got from Mailchimp, and for which command) and the latest rejection (why the
mapper would not ask). The status is then a function of the row alone (``derive``):

- a rejection newer than the latest command -> ``rejected`` (``excluded`` for ``excluded_by_policy``);
- a result for the latest command -> ``in_sync`` or ``failed`` with its reason;
- otherwise a command waits for its result -> ``pending``.

Events of one topic arrive in order per customer (one key, one partition), so "latest" within a topic
is arrival order. Commands and rejections come from different topics and may arrive in either order,
so they are compared by ``occurred_at`` (both stamped by the mapper). Results are matched to commands
by ``causation_id``, never by time.

A rejection without an audience applies to every audience of the customer: it is kept on a row with
audience ``*`` (for customers with no audience row yet) and copied onto the customer's audience rows.
That ``*`` row goes away once a newer command for any audience shows the mapper decided again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from shared.events import CustomerRejected, Event, MailchimpMemberUpsert, MemberSynced, MemberSyncFailed

from .schema import ALL_AUDIENCES

__all__ = ["FIELDS", "STATUSES", "CustomerStates", "StateKey", "SyncState", "apply_events", "derive"]

STATUSES = ("in_sync", "pending", "failed", "rejected", "excluded")
_FAILED_OUTCOMES = ("failed", "dead_lettered")

StateKey = tuple[str, str, str]
"""(connection_id, customer, audience_id)"""


@dataclass(slots=True)
class SyncState:
    """One ``sync_state`` row."""

    connection_id: str
    customer: str
    audience_id: str
    updated_at: datetime
    status: str = "pending"
    reason: str | None = None
    detail: str | None = None
    list_id: str | None = None
    email_address: str | None = None
    action: str | None = None
    member_email: str | None = None
    member_present: bool = False
    mailchimp_status: str | None = None
    outcome: str | None = None
    http_status: int | None = None
    attempts: int | None = None
    command_id: str | None = None
    command_at: datetime | None = None
    result_id: str | None = None
    result_at: datetime | None = None
    result_command_id: str | None = None
    result_reason: str | None = None
    result_detail: str | None = None
    rejection_id: str | None = None
    rejection_at: datetime | None = None
    rejection_reason: str | None = None
    rejection_detail: str | None = None

    @property
    def key(self) -> StateKey:
        return (self.connection_id, self.customer, self.audience_id)

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SyncState:
        return cls(**{name: row[name] for name in FIELDS})

    def touch(self, at: datetime) -> None:
        if at > self.updated_at:
            self.updated_at = at

    def take_rejection(self, other: SyncState) -> None:
        self.rejection_id = other.rejection_id
        self.rejection_at = other.rejection_at
        self.rejection_reason = other.rejection_reason
        self.rejection_detail = other.rejection_detail


FIELDS = tuple(f.name for f in fields(SyncState))
"""The ``sync_state`` columns, in ``SyncState`` field order."""


def derive(state: SyncState) -> None:
    """Set ``status``, ``reason`` and ``detail`` from the row's latest command, result and rejection."""
    rejected_later = state.rejection_at is not None and (
        state.command_at is None or state.rejection_at > state.command_at
    )
    if rejected_later:
        state.status = "excluded" if state.rejection_reason == "excluded_by_policy" else "rejected"
        state.reason, state.detail = state.rejection_reason, state.rejection_detail
    elif state.result_command_id is not None and (
        state.result_command_id == state.command_id or state.command_id is None
    ):
        # A result for the latest command (or for one whose command has not arrived yet).
        failed = state.outcome in _FAILED_OUTCOMES
        state.status = "failed" if failed else "in_sync"
        state.reason = state.result_reason if failed else None
        state.detail = state.result_detail if failed else None
    else:
        state.status = "pending"
        state.reason = state.detail = None


def _apply_command(state: SyncState, cmd: MailchimpMemberUpsert) -> None:
    state.command_id = str(cmd.event_id)
    state.command_at = cmd.occurred_at
    state.list_id = cmd.list_id
    state.email_address = cmd.email_address
    state.action = cmd.action


def _apply_result(state: SyncState, result: MemberSynced | MemberSyncFailed) -> None:
    state.result_id = str(result.event_id)
    state.result_at = result.occurred_at
    state.result_command_id = str(result.causation_id) if result.causation_id else None
    state.list_id = result.list_id
    state.attempts = result.attempts
    if isinstance(result, MemberSynced):
        state.outcome = result.outcome
        state.member_email = result.email_address
        state.member_present = result.outcome != "archived"
        state.mailchimp_status = result.mailchimp_status
        state.http_status = None
        state.result_reason = state.result_detail = None
    else:
        state.outcome = "failed"
        state.http_status = result.http_status
        state.result_reason = result.reason[:64]
        state.result_detail = result.detail or None
        if result.mailchimp_status is not None:
            state.mailchimp_status = result.mailchimp_status


def _apply_dead_letter(state: SyncState, cmd: MailchimpMemberUpsert, reason: str, at: datetime) -> None:
    """A command the loader dead-lettered: a failure, unless a real result for it is already known."""
    command_id = str(cmd.event_id)
    if state.result_command_id == command_id:
        return
    state.result_id = None
    state.result_at = at
    state.result_command_id = command_id
    state.outcome = "dead_lettered"
    state.result_reason = f"dead_letter:{reason}"[:64]
    state.result_detail = None


def _apply_rejection(state: SyncState, rejection: CustomerRejected) -> None:
    state.rejection_id = str(rejection.event_id)
    state.rejection_at = rejection.occurred_at
    state.rejection_reason = rejection.reason
    detail = rejection.detail
    if rejection.field:
        where = f"{rejection.field}={rejection.value!r}"
        detail = f"{where}: {detail}" if detail else where
    if rejection.owner:
        detail = f"{detail} (owned by customer {rejection.owner})"
    state.rejection_detail = detail or None


CustomerKey = tuple[str, str]
"""(connection_id, customer)"""

CustomerStates = dict[CustomerKey, dict[str, SyncState]]
"""Every loaded row, by customer and then by audience."""


def _row(rows: dict[str, SyncState], key: CustomerKey, audience_id: str, at: datetime) -> SyncState:
    """The customer's row for an audience, created (inheriting a ``*`` rejection) when missing."""
    state = rows.get(audience_id)
    if state is None:
        state = SyncState(key[0], key[1], audience_id, updated_at=at)
        wildcard = rows.get(ALL_AUDIENCES)
        if audience_id != ALL_AUDIENCES and wildcard is not None:
            state.take_rejection(wildcard)
        rows[audience_id] = state
    return state


def _touched_rows(
    rows: dict[str, SyncState], key: CustomerKey, event: Event, dead_letter_reason: str | None
) -> list[SyncState]:
    """Apply one event to the customer's rows; the rows it changed."""
    if dead_letter_reason is not None:
        if not isinstance(event, MailchimpMemberUpsert):
            return []
        state = _row(rows, key, event.audience_id, event.occurred_at)
        _apply_dead_letter(state, event, dead_letter_reason, event.occurred_at)
        return [state]
    if isinstance(event, MailchimpMemberUpsert):
        state = _row(rows, key, event.audience_id, event.occurred_at)
        _apply_command(state, event)
        return [state]
    if isinstance(event, MemberSynced | MemberSyncFailed):
        state = _row(rows, key, event.audience_id, event.occurred_at)
        _apply_result(state, event)
        return [state]
    if isinstance(event, CustomerRejected):
        if event.audience_id is not None:
            state = _row(rows, key, event.audience_id, event.occurred_at)
            _apply_rejection(state, event)
            return [state]
        wildcard = _row(rows, key, ALL_AUDIENCES, event.occurred_at)
        _apply_rejection(wildcard, event)
        touched = [wildcard]
        for audience_id, state in rows.items():
            if audience_id != ALL_AUDIENCES:
                state.take_rejection(wildcard)
                touched.append(state)
        return touched
    return []


def _wildcard_superseded(rows: dict[str, SyncState]) -> bool:
    wildcard = rows.get(ALL_AUDIENCES)
    if wildcard is None or wildcard.rejection_at is None:
        return False
    return any(
        s.command_at is not None and s.command_at > wildcard.rejection_at
        for audience_id, s in rows.items()
        if audience_id != ALL_AUDIENCES
    )


def apply_events(
    states: CustomerStates,
    events: Iterable[tuple[Event, str | None]],
) -> tuple[set[StateKey], set[StateKey]]:
    """Apply events, in arrival order, to ``states`` (every existing row of the customers concerned).

    Each item is (event, dead-letter reason or None). Returns the keys to upsert and the keys to delete;
    ``states`` holds the new rows.
    """
    changed: set[StateKey] = set()
    deleted: set[StateKey] = set()
    for event, dead_letter_reason in events:
        customer = event.__dict__.get("customer")
        if customer is None:
            continue
        key = (event.connection_id, customer)
        rows = states.setdefault(key, {})
        touched = _touched_rows(rows, key, event, dead_letter_reason)
        for state in touched:
            state.touch(event.occurred_at)
            derive(state)
            changed.add(state.key)
            deleted.discard(state.key)
        if touched and _wildcard_superseded(rows):
            del rows[ALL_AUDIENCES]
            wildcard_key = (key[0], key[1], ALL_AUDIENCES)
            changed.discard(wildcard_key)
            deleted.add(wildcard_key)
    return changed, deleted
