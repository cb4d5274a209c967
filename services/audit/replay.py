"""Replay, both ways: re-emit failed customers' last commands, or rewind a service's consumer group.

``replay_failed`` picks customer-audience pairs from the audit's ``sync_state`` (status ``failed`` by
default, narrowed by reason, customer, connection, audience and failure time), takes the latest command
of each from the audit log, and produces it again on ``mailchimp.member.upsert.v1`` as a new
``MailchimpMemberUpsert``: new ``event_id``, ``replay_of`` and ``causation_id`` = the original command,
``correlation_id`` = one new replay id for the whole replay (the audit shows it as a run of kind
``replay``). Everything else is the original command: this is for failures whose cause is gone (a
Mailchimp-side fault, a policy or audience setting changed). Data fixed in SYSPRO needs no replay: the
next poll sees the change and the mapper issues a fresh command.

The producer is idempotent (no duplicates from its own retries); every record is acknowledged by the
broker before ``replay_failed`` returns. A dry run selects and reports the same commands, producing
nothing.

``reset_offsets`` (in ``services.audit.offsets``) rewinds or advances a consumer group.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from shared.codec import DecodeError, decode_as, encode
from shared.events import MailchimpMemberUpsert, utcnow
from shared.kafka import make_producer
from shared.settings import KafkaSettings
from shared.topics import MEMBER_UPSERT

from .models import CustomerState, Filters
from .offsets import GroupActiveError, ResetPlan, reset_offsets
from .queries import MAX_LIMIT, customer_states
from .schema import events
from .store import AuditStore

__all__ = [
    "GroupActiveError",
    "ReplayCandidate",
    "ReplayReport",
    "ResetPlan",
    "replay_command",
    "replay_failed",
    "reset_offsets",
    "select_replay",
]

Progress = Callable[[int, int], None]
"""Called with (done, total) as records are acknowledged."""


@dataclass(frozen=True)
class ReplayCandidate:
    """A customer-audience pair to replay and the command that will be re-emitted."""

    state: CustomerState
    command: MailchimpMemberUpsert

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection_id": self.state.connection_id,
            "customer": self.state.customer,
            "audience_id": self.state.audience_id,
            "status": self.state.status,
            "reason": self.state.reason,
            "failed_at": self.state.updated_at.isoformat(),
            "command_id": str(self.command.event_id),
            "email_address": self.command.email_address,
            "action": self.command.action,
        }


@dataclass
class ReplayReport:
    replay_id: uuid.UUID
    dry_run: bool
    candidates: list[ReplayCandidate] = field(default_factory=list)
    #: Selected pairs that cannot be replayed, with why.
    skipped: list[tuple[CustomerState, str]] = field(default_factory=list)
    produced: list[MailchimpMemberUpsert] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "replay_id": str(self.replay_id),
            "dry_run": self.dry_run,
            "selected": len(self.candidates),
            "produced": len(self.produced),
            "commands": [c.as_dict() for c in self.candidates],
            "produced_event_ids": [str(c.event_id) for c in self.produced],
            "skipped": [
                {
                    "connection_id": s.connection_id,
                    "customer": s.customer,
                    "audience_id": s.audience_id,
                    "why": why,
                }
                for s, why in self.skipped
            ],
        }


def _engine(db: AuditStore | Engine) -> Engine:
    return db.engine if isinstance(db, AuditStore) else db


def select_replay(
    db: AuditStore | Engine, filters: Filters
) -> tuple[list[ReplayCandidate], list[tuple[CustomerState, str]]]:
    """The pairs ``filters`` selects (status ``failed`` unless given) with their latest stored command."""
    engine = _engine(db)
    if not filters.statuses:
        filters = filters.model_copy(update={"statuses": ["failed"]})
    states: list[CustomerState] = []
    offset: int | None = 0
    while offset is not None:
        page = customer_states(engine, filters, limit=MAX_LIMIT, offset=offset)
        states += page.items
        offset = page.next_offset
    ids = [s.command_id for s in states if s.command_id]
    payloads: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            query = select(events.c.event_id, events.c.payload).where(events.c.event_id.in_(chunk))
            payloads.update({r.event_id: r.payload for r in conn.execute(query)})
    candidates: list[ReplayCandidate] = []
    skipped: list[tuple[CustomerState, str]] = []
    for state in sorted(states, key=lambda s: (s.connection_id, s.customer, s.audience_id)):
        payload = payloads.get(state.command_id or "")
        if state.command_id is None:
            skipped.append((state, "no command seen: nothing to re-emit (fix the data in SYSPRO)"))
        elif payload is None:
            skipped.append((state, f"command {state.command_id} is not in the audit log"))
        else:
            try:
                command = decode_as(payload.encode(), MailchimpMemberUpsert)
            except DecodeError as exc:
                skipped.append((state, f"stored command cannot be decoded: {exc}"))
                continue
            candidates.append(ReplayCandidate(state, command))
    return candidates, skipped


def replay_command(original: MailchimpMemberUpsert, replay_id: uuid.UUID) -> MailchimpMemberUpsert:
    """The re-emitted command: the original's content under a new identity, linked to the original."""
    return original.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "occurred_at": utcnow(),
            "replay_of": original.event_id,
            "causation_id": original.event_id,
            "correlation_id": replay_id,
        }
    )


async def replay_failed(
    db: AuditStore | Engine,
    kafka: KafkaSettings,
    *,
    reason: str | None = None,
    customers: Sequence[str] = (),
    connection: str | None = None,
    audience: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    statuses: Sequence[str] = ("failed",),
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ReplayReport:
    """Re-emit the latest command of every selected customer-audience pair (see the module doc)."""
    filters = Filters(
        connection=connection,
        audience=audience,
        customers=list(customers),
        statuses=list(statuses),
        reason=reason,
        since=since,
        until=until,
    )
    candidates, skipped = await asyncio.to_thread(select_replay, db, filters)
    report = ReplayReport(replay_id=uuid.uuid4(), dry_run=dry_run, candidates=candidates, skipped=skipped)
    if dry_run or not candidates:
        return report
    commands = [replay_command(c.command, report.replay_id) for c in candidates]
    producer = make_producer(kafka, "mlc-replay")
    await producer.start()
    try:
        topic = kafka.topic(MEMBER_UPSERT.name)
        headers = [("mlc.replay.id", str(report.replay_id).encode())]
        pending = [
            await producer.send(topic, encode(command), key=command.key(), headers=headers)
            for command in commands
        ]
        for done, future in enumerate(pending, start=1):
            await future
            if progress is not None:
                progress(done, len(pending))
    finally:
        await producer.stop()
    report.produced = commands
    return report
