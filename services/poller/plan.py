"""The values a poll run works with: what a connection reads, what it remembers, what a run reports,
and where a run's records go. Plain data, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from services.poller.change_detection import KnownHashes
from services.poller.watermark import CursorKind
from shared.connections import SysproSource
from shared.events import PollCheckpoint
from shared.kafka import Output

__all__ = ["Committer", "ConnectionPlan", "ConnectionState", "RunReport"]


class Committer(Protocol):
    async def commit(self, outputs: Sequence[Output]) -> None:
        """Publish ``outputs`` in one Kafka transaction (all or nothing)."""


@dataclass(frozen=True)
class ConnectionPlan:
    """What a connection reads, resolved against ``$metadata`` at start-up."""

    connection_id: str
    source: SysproSource
    select: tuple[str, ...]
    #: Columns read but not part of the row (row versions): left out of ``row`` and ``row_hash``.
    exclude: frozenset[str]
    version_column: str | None
    cursor_kind: CursorKind | None


@dataclass
class ConnectionState:
    """A connection's memory between runs; rebuilt from the compacted topics at start-up."""

    known: KnownHashes = field(default_factory=KnownHashes)
    checkpoint: PollCheckpoint | None = None
    runs_since_full_scan: int = 0


@dataclass
class RunReport:
    run_id: UUID
    ok: bool
    full_scan: bool
    started_at: datetime
    finished_at: datetime
    rows_read: int = 0
    odata_requests: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    invalid_rows: int = 0
    reason: str | None = None
    detail: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "ok": self.ok,
            "full_scan": self.full_scan,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "rows_read": self.rows_read,
            "odata_requests": self.odata_requests,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "reason": self.reason,
            "detail": self.detail,
        }
