"""The poller service shell: Kafka state in, one worker task per connection, runs on a schedule.

Start-up order matters: the transactional producer starts first, which fences an earlier incarnation
with the same instance id and aborts its open transaction; only then is state read (committed records
only), so a poller killed mid-run and restarted resumes from exactly what that run committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.poller.errors import QueryRejected, SchemaMismatch, SysproError
from services.poller.kafka_io import KafkaCommitter, load_checkpoints, load_snapshots
from services.poller.plan import ConnectionState, RunReport
from services.poller.settings import PollerSettings
from services.poller.syspro_client import RetryPolicy
from services.poller.worker import ConnectionWorker
from shared.connections import ConnectionsConfig, load_connections
from shared.credentials import CredentialError, CredentialStore, open_store
from shared.kafka import make_producer
from shared.settings import CredentialSettings, KafkaSettings, ServiceSettings, SettingsError, load

__all__ = ["PollerService", "StartupError", "create_service"]

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The poller cannot run with this configuration; the message says which connection and why."""


class PollerService:
    name = "poller"

    def __init__(
        self,
        kafka: KafkaSettings,
        config: ConnectionsConfig,
        store: CredentialStore,
        settings: PollerSettings | None = None,
        instance_id: str = "poller",
    ) -> None:
        self.kafka = kafka
        self.config = config
        self.store = store
        self.settings = settings or PollerSettings()
        self.instance_id = instance_id
        try:
            self.connection_ids = self.settings.selected([c.id for c in config.connections])
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        self.producer: AIOKafkaProducer | None = None
        self.workers: dict[str, ConnectionWorker] = {}
        self._producer_started = False
        self._state_loaded = False
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        # aiokafka clients belong to the running event loop, so they are made here, not in __init__.
        self.producer = make_producer(
            self.kafka, f"mlc-poller-{self.instance_id}", transactional_id=f"mlc-poller-{self.instance_id}"
        )
        committer = KafkaCommitter(self.producer, self.kafka)
        await self.producer.start()
        self._producer_started = True
        snapshots = await load_snapshots(self.kafka, self.connection_ids)
        checkpoints = await load_checkpoints(self.kafka, self.connection_ids)
        retry = RetryPolicy(
            initial_seconds=self.settings.retry_initial_seconds, max_seconds=self.settings.retry_max_seconds
        )
        for connection_id in self.connection_ids:
            state = ConnectionState(snapshots[connection_id], checkpoints.get(connection_id))
            self.workers[connection_id] = ConnectionWorker(
                self.config.get(connection_id), self.store, state, committer, retry
            )
        log.info(
            "state loaded",
            extra={
                "customers": {c: len(s) for c, s in snapshots.items()},
                "checkpoints": sorted(checkpoints),
            },
        )
        await asyncio.gather(*(self._prepare(w) for w in self.workers.values()))
        self._state_loaded = True

    async def _prepare(self, worker: ConnectionWorker) -> None:
        try:
            await worker.prepare()
        except (SchemaMismatch, QueryRejected) as exc:
            raise StartupError(f"connection {worker.id}: {exc}") from None
        except SysproError as exc:
            # SYSPRO down or the credential refused: not a configuration error. The check is redone
            # before each run, and each failed attempt is published as PollRunFailed.
            log.warning(
                "connection could not be checked at start-up; will retry before each run",
                extra={"connection": worker.id, "reason": exc.reason, "detail": str(exc)},
            )
        if self.settings.enet_check:
            await worker.check_enet()

    async def run(self, stop: asyncio.Event) -> None:
        self._tasks = [
            asyncio.create_task(worker.loop(stop, self.settings.run_on_start), name=f"poll-{worker.id}")
            for worker in self.workers.values()
        ]
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({stopper, *self._tasks}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopper.cancel()
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def close(self) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(Exception):
                await worker.aclose()
        if self.producer is not None:
            await self.producer.stop()
            self._producer_started = False

    async def poll_now(self, connection_id: str) -> RunReport:
        """Run a poll of one connection now and return its report (tests, the demo, the HTTP endpoint)."""
        try:
            worker = self.workers[connection_id]
        except KeyError:
            raise KeyError(f"unknown connection {connection_id!r}") from None
        return await worker.poll_now()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        ready = self._producer_started and self._state_loaded
        return ready, {
            "kafka": self._producer_started,
            "state_loaded": self._state_loaded,
            "connections": {c: w.status() for c, w in self.workers.items()},
        }

    def http_app(self) -> Starlette:
        """``GET /poll`` (status of every connection) and ``POST /poll/{connection_id}`` (run one now).

        Plain Starlette: two routes do not justify FastAPI's import cost in a process whose memory
        budget goes to the snapshot."""

        async def status(_: Request) -> JSONResponse:
            return JSONResponse({c: w.status() for c, w in self.workers.items()})

        async def poll(request: Request) -> JSONResponse:
            connection_id = request.path_params["connection_id"]
            if connection_id not in self.workers:
                return JSONResponse({"detail": f"unknown connection {connection_id!r}"}, status_code=404)
            if not self._state_loaded:
                return JSONResponse({"detail": "the poller is still starting"}, status_code=503)
            report = await self.poll_now(connection_id)
            return JSONResponse(report.summary(), status_code=200 if report.ok else 502)

        return Starlette(
            routes=[
                Route("/poll", status, methods=["GET"]),
                Route("/poll/{connection_id}", poll, methods=["POST"]),
            ]
        )


def create_service(settings: ServiceSettings) -> PollerService:
    """Build the poller from the environment, the connections file and the credential store."""
    kafka = load(KafkaSettings)
    poller = load(PollerSettings)
    config = load_connections(settings.connections_file)
    store = open_store(load(CredentialSettings))
    for connection in config.connections:
        credential = store.get(connection.syspro.credential)
        if credential.kind != "syspro":
            raise CredentialError(
                f"connection {connection.id}: credential {connection.syspro.credential!r} is a "
                f"{credential.kind} credential, not a syspro one"
            )
    return PollerService(kafka, config, store, poller, settings.instance_id)
