"""One poll run of one connection: read, diff, publish page by page, then close the run.

The transaction boundaries are the correctness argument (see ADR 0011):

- each page's ``CustomerChanged`` events and their snapshot entries are committed together, and only
  then become the in-memory known state; a crash mid-run leaves Kafka holding exactly the events whose
  snapshots it also holds, so the next run re-reads and emits only what is still unpublished;
- deletes are decided only after a *complete* full scan (and after the candidates were looked up one by
  one and found missing), and the last of them go out with the checkpoint and ``PollRunCompleted``;
- a run that fails publishes ``PollRunFailed`` alone, and the checkpoint stays where it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from services.poller import metrics
from services.poller.change_detection import (
    FullScanTracker,
    InvalidRow,
    ObservedRow,
    RowChange,
    deletions,
    diff_rows,
    observe_row,
)
from services.poller.columns import KEY_COLUMN
from services.poller.emission import (
    change_outputs,
    checkpoint_output,
    run_completed_output,
    run_failed_output,
)
from services.poller.errors import BadResponse, SysproError
from services.poller.paging import fetch_by_keys, head_value, scan_by_cursor, scan_by_key
from services.poller.plan import Committer, ConnectionPlan, ConnectionState, RunReport
from services.poller.syspro_client import ODataClient
from services.poller.watermark import CursorError, CursorValue, CursorWindow
from shared.events import PollCheckpoint, PollRunCompleted, utcnow
from shared.kafka import Output

__all__ = ["PollRunner"]

log = logging.getLogger(__name__)


class PollRunner:
    """Runs polls for one connection; ``run`` never raises for SYSPRO trouble, only for Kafka's."""

    def __init__(
        self,
        plan: ConnectionPlan,
        state: ConnectionState,
        client: ODataClient,
        committer: Committer,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.plan = plan
        self.state = state
        self.client = client
        self.committer = committer
        self.clock = clock
        self._pending_deletes: list[RowChange] = []

    @property
    def _id(self) -> str:
        return self.plan.connection_id

    # ----- deciding the kind of run ------------------------------------------------------------------

    def _start_cursor(self) -> CursorValue | None:
        checkpoint = self.state.checkpoint
        kind = self.plan.cursor_kind
        if checkpoint is None or checkpoint.strategy != "cursor" or checkpoint.cursor is None or kind is None:
            return None
        try:
            return CursorValue.decode(kind, checkpoint.cursor)
        except CursorError:
            log.warning(
                "checkpointed cursor is unreadable for the configured column; doing a full scan",
                extra={"connection": self._id},
            )
            return None

    def full_scan_due(self, now: datetime) -> bool:
        source = self.plan.source
        if source.strategy == "snapshot" or self._start_cursor() is None:
            return True
        if self.state.runs_since_full_scan + 1 >= source.full_scan_every:
            return True
        # The run counter lives in memory; after a restart the time since the last full scan stands in.
        last = self.state.checkpoint.last_full_scan_at if self.state.checkpoint else None
        return last is None or now - last >= timedelta(
            seconds=source.full_scan_every * source.interval_seconds
        )

    # ----- a run -------------------------------------------------------------------------------------

    async def run(self) -> RunReport:
        started = self.clock()
        t0 = time.perf_counter()
        requests0 = self.client.requests
        report = RunReport(uuid4(), False, self.full_scan_due(started), started, started)
        strategy = self.plan.source.strategy
        scan = "full" if report.full_scan else "incremental"
        try:
            window = await (self._full_scan(report) if report.full_scan else self._incremental(report))
        except SysproError as exc:
            report.odata_requests = self.client.requests - requests0
            await self._fail(report, exc.reason, str(exc))
            metrics.RUN_SECONDS.labels(self._id, strategy, scan, "failed").observe(time.perf_counter() - t0)
            return report
        report.odata_requests = self.client.requests - requests0
        await self._close(report, window)
        metrics.RUN_SECONDS.labels(self._id, strategy, scan, "completed").observe(time.perf_counter() - t0)
        return report

    async def _publish(
        self, report: RunReport, changes: list[RowChange], extra: Sequence[Output] = ()
    ) -> None:
        outputs = change_outputs(self._id, report.run_id, self.plan.source.strategy, changes)
        outputs.extend(extra)
        if outputs:
            await self.committer.commit(outputs)
        # Only what is committed becomes known: a failed commit leaves it to be found again next run.
        self.state.known.apply(changes)
        for change in changes:
            setattr(report, change.change, getattr(report, change.change) + 1)
            metrics.EVENTS_EMITTED.labels(self._id, change.change).inc()
        metrics.KNOWN_CUSTOMERS.labels(self._id).set(len(self.state.known))

    def _observe(
        self,
        rows: list[dict[str, Any]],
        report: RunReport,
        tracker: FullScanTracker | None = None,
        window: CursorWindow | None = None,
    ) -> list[ObservedRow]:
        plan = self.plan
        observed: list[ObservedRow] = []
        for raw in rows:
            try:
                row = observe_row(raw, KEY_COLUMN, plan.exclude, plan.version_column)
            except InvalidRow as exc:
                report.invalid_rows += 1
                metrics.ERRORS.labels(self._id, "invalid_row").inc()
                log.warning(
                    "row skipped: it cannot be tracked", extra={"connection": self._id, "error": str(exc)}
                )
                continue
            observed.append(row)
            if tracker is not None:
                tracker.seen(row.customer)
            if window is not None:
                try:
                    window.observe(CursorValue.from_odata(window.kind, raw.get(window.column)))
                except CursorError as exc:
                    raise BadResponse(str(exc)) from None
        report.rows_read += len(rows)
        metrics.ROWS_READ.labels(self._id).inc(len(rows))
        return observed

    async def _page(
        self,
        rows: list[dict[str, Any]],
        report: RunReport,
        tracker: FullScanTracker | None = None,
        window: CursorWindow | None = None,
    ) -> None:
        observed = self._observe(rows, report, tracker, window)
        changes = diff_rows(self.state.known, observed)
        if changes:
            await self._publish(report, changes)

    def _window(self) -> CursorWindow | None:
        source, kind = self.plan.source, self.plan.cursor_kind
        if source.strategy != "cursor" or kind is None:
            return None
        return CursorWindow(
            source.cursor_column, kind, self._start_cursor(), source.cursor_overlap, KEY_COLUMN
        )

    async def _full_scan(self, report: RunReport) -> CursorWindow | None:
        plan, source = self.plan, self.plan.source
        window = self._window()
        if window is not None:
            # Rows updated while the scan runs get a later cursor than this head, so the next
            # incremental run reads them even when the scan had already passed their position.
            try:
                window.observe(
                    CursorValue.from_odata(window.kind, await head_value(self.client, window.column))
                )
            except CursorError as exc:
                raise BadResponse(str(exc)) from None
        tracker = FullScanTracker(self.state.known)
        async for rows in scan_by_key(self.client, plan.select, source.page_size, KEY_COLUMN):
            await self._page(rows, report, tracker)
        candidates = tracker.candidates()
        if candidates:
            async for rows in fetch_by_keys(self.client, plan.select, candidates, KEY_COLUMN):
                await self._page(rows, report, tracker)
            stepped_over = len(candidates) - len(tracker.candidates())
            if stepped_over:
                log.warning(
                    "customers missed by the paged scan were found by key (the table changed while it was "
                    "read, or the server caps pages below page_size without a nextLink)",
                    extra={"connection": self._id, "count": stepped_over},
                )
        self._pending_deletes = deletions(self.state.known, tracker.candidates())
        return window

    async def _incremental(self, report: RunReport) -> CursorWindow | None:
        window = self._window()
        assert window is not None and window.start is not None
        async for rows in scan_by_cursor(self.client, self.plan.select, window, self.plan.source.page_size):
            await self._page(rows, report, window=window)
        self._pending_deletes = []
        return window

    async def _close(self, report: RunReport, window: CursorWindow | None) -> None:
        """Deletes, checkpoint and ``PollRunCompleted``: the last transaction of a run."""
        pending, self._pending_deletes = self._pending_deletes, []
        size = self.plan.source.page_size
        while len(pending) > size:
            await self._publish(report, pending[:size])
            pending = pending[size:]
        finished = self.clock()
        report.finished_at = finished
        previous = self.state.checkpoint
        cursor = window.close() if window is not None else None
        checkpoint = PollCheckpoint(
            connection_id=self._id,
            strategy=self.plan.source.strategy,
            cursor=cursor.encode() if cursor is not None else None,
            last_run_id=report.run_id,
            last_completed_at=finished,
            last_full_scan_at=finished
            if report.full_scan
            else (previous.last_full_scan_at if previous else None),
            rows_seen=report.rows_read,
            correlation_id=report.run_id,
        )
        completed = PollRunCompleted(
            connection_id=self._id,
            run_id=report.run_id,
            strategy=self.plan.source.strategy,
            full_scan=report.full_scan,
            started_at=report.started_at,
            rows_read=report.rows_read,
            odata_requests=report.odata_requests,
            created=report.created,
            updated=report.updated,
            deleted=report.deleted + len(pending),
            correlation_id=report.run_id,
        )
        await self._publish(report, pending, [checkpoint_output(checkpoint), run_completed_output(completed)])
        report.ok = True
        self.state.checkpoint = checkpoint
        self.state.runs_since_full_scan = 0 if report.full_scan else self.state.runs_since_full_scan + 1
        metrics.RUNS.labels(self._id, "completed").inc()
        metrics.LAST_SUCCESS.labels(self._id).set(finished.timestamp())
        log.info("poll run completed", extra={"connection": self._id, "run": report.summary()})

    async def _fail(self, report: RunReport, reason: str, detail: str) -> None:
        report.finished_at = self.clock()
        report.reason, report.detail = reason, detail
        self._pending_deletes = []
        _, output = run_failed_output(self._id, report.run_id, report.started_at, reason, detail)
        metrics.RUNS.labels(self._id, "failed").inc()
        metrics.ERRORS.labels(self._id, reason).inc()
        log.error(
            "poll run failed; checkpoint not advanced",
            extra={"connection": self._id, "reason": reason, "detail": detail, "run_id": str(report.run_id)},
        )
        await self.committer.commit([output])
