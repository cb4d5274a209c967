"""Per-batch contributions to the ``customers`` and ``runs`` read models: pure, no I/O.

The store adds a batch's run counts to the stored ones (``changes = changes + n``), which is only right
because a batch never holds a record that is already stored: counts are made from new rows only.

Runs are keyed by the poll run id; everything descending from a run carries it as ``correlation_id``
(changes also carry it as ``run_id``). A replay's commands carry the replay id instead, which makes a
replay a run of kind ``replay``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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

from .projection import Projected

__all__ = ["RunTally", "customer_rows", "run_facts", "run_tallies"]


@dataclass(slots=True)
class RunTally:
    """What one batch adds to a run's counters."""

    run_id: str
    kind: str | None
    connection_id: str
    first_event_at: datetime
    last_event_at: datetime
    changes: int = 0
    commands: int = 0
    synced: int = 0
    failed: int = 0
    rejected: int = 0
    dead_letters: int = 0

    def as_row(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "kind": self.kind,
            "connection_id": self.connection_id,
            "first_event_at": self.first_event_at,
            "last_event_at": self.last_event_at,
            "changes": self.changes,
            "commands": self.commands,
            "synced": self.synced,
            "failed": self.failed,
            "rejected": self.rejected,
            "dead_letters": self.dead_letters,
        }


def customer_rows(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The latest change per customer in the batch, as ``customers`` rows."""
    latest: dict[tuple[str, str], CustomerChanged] = {}
    for event in events:
        if isinstance(event, CustomerChanged):
            latest[(event.connection_id, event.customer)] = event
    return [
        {
            "connection_id": change.connection_id,
            "customer": change.customer,
            "last_change": change.change,
            "deleted": change.change == "deleted",
            "row_hash": change.row_hash[:128],
            "change_id": str(change.event_id),
            "changed_at": change.occurred_at,
            "first_seen_at": change.occurred_at,
        }
        for change in latest.values()
    ]


def _tally(tallies: dict[str, RunTally], run_id: str, event: Event, kind: str | None = None) -> RunTally:
    tally = tallies.get(run_id)
    if tally is None:
        tally = RunTally(run_id, kind, event.connection_id, event.occurred_at, event.occurred_at)
        tallies[run_id] = tally
    else:
        tally.first_event_at = min(tally.first_event_at, event.occurred_at)
        tally.last_event_at = max(tally.last_event_at, event.occurred_at)
        tally.kind = tally.kind or kind
    return tally


def run_tallies(projected: Iterable[Projected]) -> dict[str, RunTally]:
    """Counts per run (correlation id) of the batch's new rows."""
    tallies: dict[str, RunTally] = {}
    for item in projected:
        # The row holds the correlation id as text already (str(UUID) is not free at this rate).
        correlation_id: str = item.row["correlation_id"]
        if item.dead_letter_of is not None:
            _tally(tallies, correlation_id, item.dead_letter_of).dead_letters += 1
            continue
        event = item.event
        if event is None:
            continue
        if isinstance(event, CustomerChanged):
            _tally(tallies, str(event.run_id), event).changes += 1
        elif isinstance(event, MailchimpMemberUpsert):
            kind = "replay" if event.replay_of is not None else None
            _tally(tallies, correlation_id, event, kind).commands += 1
        elif isinstance(event, MemberSynced):
            _tally(tallies, correlation_id, event).synced += 1
        elif isinstance(event, MemberSyncFailed):
            _tally(tallies, correlation_id, event).failed += 1
        elif isinstance(event, CustomerRejected):
            _tally(tallies, correlation_id, event).rejected += 1
        elif isinstance(event, PollRunCompleted | PollRunFailed):
            _tally(tallies, str(event.run_id), event, "poll")
    return tallies


def run_facts(events: Iterable[Event]) -> list[dict[str, Any]]:
    """What PollRunCompleted / PollRunFailed say about their run, as ``runs`` columns."""
    facts: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, PollRunCompleted):
            facts.append(
                {
                    "run_id": str(event.run_id),
                    "status": "completed",
                    "strategy": event.strategy,
                    "full_scan": event.full_scan,
                    "started_at": event.started_at,
                    "finished_at": event.occurred_at,
                    "rows_read": event.rows_read,
                    "odata_requests": event.odata_requests,
                    "created": event.created,
                    "updated": event.updated,
                    "deleted": event.deleted,
                    "reason": None,
                    "detail": None,
                }
            )
        elif isinstance(event, PollRunFailed):
            facts.append(
                {
                    "run_id": str(event.run_id),
                    "status": "failed",
                    "strategy": None,
                    "full_scan": None,
                    "started_at": event.started_at,
                    "finished_at": event.occurred_at,
                    "rows_read": None,
                    "odata_requests": None,
                    "created": None,
                    "updated": None,
                    "deleted": None,
                    "reason": event.reason[:64],
                    "detail": event.detail or None,
                }
            )
    return facts
