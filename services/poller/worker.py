"""One connection's worker: its SYSPRO clients, its plan (checked against ``$metadata``), its schedule.

The worker owns everything per connection so that several connections run side by side in one process
without sharing anything but the Kafka producer. Runs of one connection never overlap: scheduled runs
and ``poll_now`` take the same lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

from aiokafka.errors import KafkaError, ProducerFenced
from pydantic import SecretStr

from services.poller import metrics
from services.poller.columns import KEY_COLUMN, VERSION_COLUMN, columns_to_read
from services.poller.emission import run_failed_output
from services.poller.enet_client import EnetClient, EnetCredentials, LogonCheck
from services.poller.errors import QueryRejected, SchemaMismatch, SysproError
from services.poller.metadata import EntityMetadata
from services.poller.plan import Committer, ConnectionPlan, ConnectionState, RunReport
from services.poller.runner import PollRunner
from services.poller.syspro_client import ODataClient, RetryPolicy
from services.poller.watermark import CursorError, CursorValue, CursorWindow, cursor_kind_for
from shared.connections import Connection
from shared.credentials import CredentialError, CredentialStore
from shared.events import utcnow

__all__ = ["ConnectionWorker", "build_plan"]

log = logging.getLogger(__name__)


def build_plan(connection: Connection, meta: EntityMetadata) -> ConnectionPlan:
    """Resolve what to read against the service's ``$metadata``; a missing column is named."""
    source = connection.syspro
    needed = columns_to_read(connection)
    missing = [c for c in needed if c not in meta.properties]
    if missing:
        raise SchemaMismatch(
            f"connection {connection.id}: column(s) {', '.join(missing)} not found in "
            f"{meta.entity_set} ($metadata of {source.odata_url})"
        )
    version = VERSION_COLUMN if meta.properties.get(VERSION_COLUMN) == "Edm.Binary" else None
    select = needed if version is None or version in needed else [*needed, version]
    exclude = frozenset(c for c in select if meta.properties[c] == "Edm.Binary")
    kind = None
    if source.strategy == "cursor":
        try:
            kind = cursor_kind_for(meta.properties[source.cursor_column])
        except CursorError as exc:
            raise SchemaMismatch(
                f"connection {connection.id}: cursor_column {source.cursor_column}: {exc}"
            ) from None
    return ConnectionPlan(connection.id, source, tuple(select), exclude, version, kind)


class ConnectionWorker:
    def __init__(
        self,
        connection: Connection,
        store: CredentialStore,
        state: ConnectionState,
        committer: Committer,
        retry: RetryPolicy,
    ) -> None:
        self.connection = connection
        self.id = connection.id
        self.source = connection.syspro
        self.store = store
        self.state = state
        self.committer = committer
        self.client = ODataClient(
            self.source.odata_url,
            self.source.entity_set,
            self._odata_credentials,
            connection_id=self.id,
            timeout=self.source.timeout_seconds,
            retry=RetryPolicy(self.source.max_attempts, retry.initial_seconds, retry.max_seconds),
        )
        self.enet: EnetClient | None = None
        if self.source.enet_url:
            self.enet = EnetClient(
                self.source.enet_url,
                self._enet_credentials,
                connection_id=self.id,
                timeout=self.source.timeout_seconds,
                retry=self.client.retry,
            )
        self.runner: PollRunner | None = None
        self.lock = asyncio.Lock()
        self.wake = asyncio.Event()
        self.enet_check: LogonCheck | None = None
        self.last_run: RunReport | None = None
        self.last_success: datetime | None = None
        self.last_error: dict[str, Any] | None = None
        metrics.KNOWN_CUSTOMERS.labels(self.id).set(len(state.known))
        metrics.INTERVAL.labels(self.id).set(self.source.interval_seconds)

    # ----- credentials (read afresh each time: a rotated password is picked up without a restart) ----

    def _syspro_credential(self) -> tuple[str, dict[str, SecretStr]]:
        credential = self.store.get(self.source.credential)
        if credential.kind != "syspro":
            raise CredentialError(
                f"credential {self.source.credential!r} is a {credential.kind} credential, not a syspro one"
            )
        return credential.meta.get("operator") or self.source.operator, credential.secrets

    def _odata_credentials(self) -> tuple[str, SecretStr]:
        operator, secrets = self._syspro_credential()
        if "secret" not in secrets:
            raise CredentialError(f"credential {self.source.credential!r} has no OData password")
        return operator, secrets["secret"]

    def _enet_credentials(self) -> EnetCredentials:
        operator, secrets = self._syspro_credential()
        password = secrets.get("enet_password") or secrets.get("secret") or SecretStr("")
        company = (
            self.source.company_id or urlsplit(self.source.odata_url).path.rstrip("/").rsplit("/", 1)[-1]
        )
        return EnetCredentials(operator, password, company, secrets.get("company_password") or SecretStr(""))

    # ----- start-up ----------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Check the service and ``$metadata``; build the plan. Raises ``SchemaMismatch`` for bad config."""
        meta = await self.client.check_service()
        plan = build_plan(self.connection, meta)
        if plan.cursor_kind is not None:
            await self._probe_cursor(plan)
        self.runner = PollRunner(plan, self.state, self.client, self.committer)
        log.info(
            "connection ready",
            extra={"connection": self.id, "columns": list(plan.select), "strategy": self.source.strategy},
        )

    async def _probe_cursor(self, plan: ConnectionPlan) -> None:
        assert plan.cursor_kind is not None
        window = CursorWindow(
            self.source.cursor_column, plan.cursor_kind, CursorValue.minimum(plan.cursor_kind)
        )
        condition = window.filter_after(None)
        assert condition is not None
        try:
            await self.client.query(
                [
                    ("$select", KEY_COLUMN),
                    ("$filter", condition),
                    ("$orderby", window.orderby()),
                    ("$top", "1"),
                ]
            )
        except QueryRejected as exc:
            raise SchemaMismatch(
                f"connection {self.id}: SYSPRO refuses to filter or order by {self.source.cursor_column} "
                f"({exc}); use strategy 'snapshot' or another cursor_column"
            ) from None

    async def check_enet(self) -> None:
        if self.enet is None:
            return
        self.enet_check = await self.enet.check_logon()
        level = logging.INFO if self.enet_check.ok else logging.WARNING
        log.log(
            level,
            "e.net logon check",
            extra={"connection": self.id, "ok": self.enet_check.ok, "detail": self.enet_check.detail},
        )

    # ----- runs --------------------------------------------------------------------------------------

    async def poll_now(self) -> RunReport:
        """Run a poll right away (waits for a run in progress first) and return its report."""
        async with self.lock:
            report = await self._run()
        return report

    async def _run(self) -> RunReport:
        started = utcnow()
        try:
            if self.runner is None:
                await self.prepare()
            assert self.runner is not None
            report = await self.runner.run()
        except SysproError as exc:
            report = await self._unprepared_failure(started, exc)
        except ProducerFenced:
            raise
        except KafkaError as exc:
            metrics.ERRORS.labels(self.id, "kafka").inc()
            metrics.RUNS.labels(self.id, "failed").inc()
            log.error(
                "poll run failed on Kafka; it will be redone",
                extra={"connection": self.id, "error": f"{type(exc).__name__}: {exc}"},
            )
            report = RunReport(
                uuid4(), False, False, started, utcnow(), reason="kafka", detail=type(exc).__name__
            )
        self.last_run = report
        if report.ok:
            self.last_success = report.finished_at
        else:
            self.last_error = {
                "at": report.finished_at.isoformat(),
                "reason": report.reason,
                "detail": report.detail,
            }
        return report

    async def _unprepared_failure(self, started: datetime, exc: SysproError) -> RunReport:
        """The connection could not even be checked (SYSPRO down at start-up, credential refused)."""
        report = RunReport(uuid4(), False, False, started, utcnow(), reason=exc.reason, detail=str(exc))
        _, output = run_failed_output(self.id, report.run_id, started, exc.reason, str(exc))
        metrics.RUNS.labels(self.id, "failed").inc()
        metrics.ERRORS.labels(self.id, exc.reason).inc()
        log.error(
            "connection check failed", extra={"connection": self.id, "reason": exc.reason, "detail": str(exc)}
        )
        await self.committer.commit([output])
        return report

    async def loop(self, stop: asyncio.Event, run_first: bool) -> None:
        """Poll every ``interval_seconds`` until ``stop``; ``wake`` starts a run early."""
        if not run_first:
            await self._sleep(stop)
        while not stop.is_set():
            async with self.lock:
                await self._run()
            await self._sleep(stop)

    async def _sleep(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
        try:
            await asyncio.wait(
                waiters, timeout=self.source.interval_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        self.wake.clear()

    def status(self) -> dict[str, Any]:
        return {
            "strategy": self.source.strategy,
            "interval_seconds": self.source.interval_seconds,
            "checked": self.runner is not None,
            "known_customers": len(self.state.known),
            "cursor": self.state.checkpoint.cursor if self.state.checkpoint else None,
            "last_run": self.last_run.summary() if self.last_run else None,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": self.last_error,
            "enet": None
            if self.enet_check is None
            else {"ok": self.enet_check.ok, "detail": self.enet_check.detail},
        }

    async def aclose(self) -> None:
        await self.client.aclose()
        if self.enet is not None:
            await self.enet.aclose()
