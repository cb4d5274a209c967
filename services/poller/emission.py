"""The records a poll run publishes, built from its decisions. Pure: events in, ``Output`` records out.

Every record of a run carries the run id as ``correlation_id`` (a poll's changes have no cause of their
own, so ``causation_id`` stays null): the audit follows run -> change -> command -> result by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal
from uuid import UUID

from services.poller.change_detection import RowChange
from shared.codec import encode
from shared.events import (
    CustomerChanged,
    CustomerSnapshot,
    PollCheckpoint,
    PollRunCompleted,
    PollRunFailed,
    customer_key,
)
from shared.kafka import Output
from shared.topics import CUSTOMER_CHANGED, CUSTOMER_SNAPSHOT, POLL_CHECKPOINT, POLL_RUN

__all__ = ["change_outputs", "checkpoint_output", "run_completed_output", "run_failed_output"]

Strategy = Literal["snapshot", "cursor"]


def change_outputs(
    connection_id: str, run_id: UUID, strategy: Strategy, changes: Iterable[RowChange]
) -> list[Output]:
    """Per change: the ``CustomerChanged`` event and the snapshot entry (a tombstone for a delete)."""
    outputs: list[Output] = []
    for change in changes:
        key = customer_key(connection_id, change.customer)
        event = CustomerChanged(
            connection_id=connection_id,
            customer=change.customer,
            change=change.change,
            row=change.row,
            row_hash=change.row_hash,
            run_id=run_id,
            strategy=strategy,
            correlation_id=run_id,
        )
        outputs.append(Output(CUSTOMER_CHANGED.name, key, encode(event)))
        if change.change == "deleted":
            outputs.append(Output(CUSTOMER_SNAPSHOT.name, key, None))
        else:
            snapshot = CustomerSnapshot(
                connection_id=connection_id,
                customer=change.customer,
                row_hash=change.row_hash,
                source_version=change.source_version,
                correlation_id=run_id,
            )
            outputs.append(Output(CUSTOMER_SNAPSHOT.name, key, encode(snapshot)))
    return outputs


def checkpoint_output(checkpoint: PollCheckpoint) -> Output:
    return Output(POLL_CHECKPOINT.name, checkpoint.key(), encode(checkpoint))


def run_completed_output(event: PollRunCompleted) -> Output:
    return Output(POLL_RUN.name, event.key(), encode(event))


def run_failed_output(
    connection_id: str, run_id: UUID, started_at: datetime, reason: str, detail: str
) -> tuple[PollRunFailed, Output]:
    event = PollRunFailed(
        connection_id=connection_id,
        run_id=run_id,
        started_at=started_at,
        reason=reason,
        detail=detail[:2000],
        correlation_id=run_id,
    )
    return event, Output(POLL_RUN.name, event.key(), encode(event))
