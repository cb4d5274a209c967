"""The whole pipeline for a reliability test: a ``LocalStack`` plus the waits and reads the tests share.

``settled`` is the one definition of "the pipeline has caught up" every test uses: a poll that started
after the last SYSPRO change has completed, the poller is stopped (so no new run adds records), every
record on the topics has been consumed and committed by the group that reads it (mapper, loader) and
stored by the audit, and a second look finds no new record (a consumed result can wake a waiting
customer and make a new command).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import httpx

from shared.events import PollRunCompleted
from shared.settings import KafkaSettings
from shared.topics import (
    CUSTOMER_CHANGED,
    CUSTOMER_REJECTED,
    DEAD_LETTER,
    MEMBER_RESULT,
    MEMBER_UPSERT,
    POLL_RUN,
)
from simulators.stack import SERVICES, LocalStack, ServiceProcess, StackOptions
from tests.helpers import wait_for
from tests.reliability.observe import AuditDb, Metrics, TopicDump, committed_offsets, dump_topics, scrape

__all__ = ["AUDITED", "Pipeline", "eventually", "prepared_pipeline", "running_pipeline"]

AUDITED = (
    CUSTOMER_CHANGED.name,
    POLL_RUN.name,
    MEMBER_UPSERT.name,
    MEMBER_RESULT.name,
    CUSTOMER_REJECTED.name,
    DEAD_LETTER.name,
)
#: Which group must have consumed which topics before the pipeline counts as settled.
CONSUMERS = {
    "mapper": (CUSTOMER_CHANGED.name, MEMBER_RESULT.name),
    "loader": (MEMBER_UPSERT.name,),
}


async def eventually(condition: Callable[[], object], timeout: float, interval: float, message: str) -> None:
    """Wait until ``condition()`` (awaited when it returns an awaitable) is truthy, or fail after
    ``timeout`` seconds naming ``message``: ``tests.helpers.wait_for`` with a signature mypy can check."""
    await wait_for(cast(Any, condition), timeout, interval, message)


class Pipeline:
    """A started ``LocalStack`` and what the reliability tests read from it."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.kafka = stack.kafka
        self.audit_db = AuditDb(stack.workdir / "audit.db")
        self.restarts: dict[str, int] = dict.fromkeys(SERVICES, 0)
        #: Services stopped on purpose (not a failure when their process is gone).
        self.stopped: set[str] = set()
        #: Exits nobody asked for, seen and restarted by ``supervised`` (service, exit code, log tail).
        self.unplanned_exits: list[tuple[str, int | None, str]] = []
        self._supervising = False

    @property
    def connection_id(self) -> str:
        return self.stack.options.connection_id

    @property
    def list_id(self) -> str:
        return self.stack.options.list_id

    def process(self, service: str) -> ServiceProcess:
        return self.stack.processes[service]

    def dead(self) -> dict[str, int | None]:
        """Services whose process has exited, with the exit code."""
        return {
            name: (p.proc.returncode if p.proc is not None else None)
            for name, p in self.stack.processes.items()
            if not p.alive and name not in self.stopped
        }

    def assert_alive(self) -> None:
        if self._supervising:
            return
        dead = self.dead()
        assert not dead, "services exited: " + "; ".join(
            f"{name} ({code}):\n{self.process(name).logs()[-2500:]}" for name, code in dead.items()
        )

    @contextlib.asynccontextmanager
    async def supervised(self, interval: float = 0.5) -> AsyncIterator[None]:
        """Restart any service that exits on its own, as an orchestrator would, and remember the exit
        (``unplanned_exits``): a crash test must tell a crash it caused from one the service had."""

        async def watch() -> None:
            while True:
                for name, code in self.dead().items():
                    self.unplanned_exits.append((name, code, self.process(name).logs()[-3000:]))
                    self.start(name)
                await asyncio.sleep(interval)

        self._supervising = True
        task = asyncio.create_task(watch())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._supervising = False

    async def metrics(self, service: str) -> Metrics:
        return await scrape(self.process(service).url)

    def kill(self, service: str) -> None:
        """SIGKILL: no shutdown hook, no flush, no transaction abort; what a crash or an OOM kill does."""
        self.process(service).kill()

    def start(self, service: str) -> ServiceProcess:
        self.restarts[service] += 1
        self.stopped.discard(service)
        return self.stack.start_service(service)

    def stop(self, service: str, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code (0 after a clean shutdown)."""
        self.stopped.add(service)
        return self.process(service).terminate(timeout=timeout)

    async def restart(self, service: str, timeout: float = 120.0) -> None:
        self.kill(service)
        await self.start(service).wait_ready(timeout)

    async def poll_now(self, timeout: float = 120.0) -> dict[str, Any]:
        """Run one poll now through the poller's HTTP endpoint; retried while SYSPRO or Kafka fail."""
        deadline = time.monotonic() + timeout
        last: Any = None
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=timeout)) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.post(f"{self.process('poller').url}/poll/{self.connection_id}")
                    last = response.json()
                    if response.status_code == 200:
                        return dict(last)
                await asyncio.sleep(1.0)
        raise AssertionError(f"no successful poll within {timeout}s (last answer: {last})")

    async def completed_runs_since(self, since: datetime) -> list[PollRunCompleted]:
        runs = (await dump_topics(self.kafka, [POLL_RUN.name])).events(POLL_RUN.name)
        return [r for r in runs if isinstance(r, PollRunCompleted) and r.started_at >= since]

    async def _consumed(self, dump: TopicDump) -> list[str]:
        """What is not yet consumed and committed (empty when everything is)."""
        behind: list[str] = []
        for group, topics in CONSUMERS.items():
            committed = await committed_offsets(self.kafka, self.kafka.group(group))
            for key, end in dump.last_offsets(topics).items():
                if committed.get(key, 0) < end:
                    behind.append(f"{group} {key}: {committed.get(key, 0)} < {end}")
        stored = self.audit_db.positions() if self.audit_db.path.exists() else {}
        for key, end in dump.last_offsets(AUDITED).items():
            if stored.get(key, -1) < end - 1:
                behind.append(f"audit {key}: {stored.get(key, -1)} < {end - 1}")
        return behind

    async def settled(self, since: datetime, timeout: float = 300.0) -> TopicDump:
        """Wait until a poll started at or after ``since`` has completed, stop the poller (SIGTERM, it
        must exit 0), and wait until everything on the topics has been consumed by every service;
        returns the topics as they are then, which no service changes any more."""
        deadline = time.monotonic() + timeout
        while not await self.completed_runs_since(since):
            self.assert_alive()
            assert time.monotonic() < deadline, f"no poll run completed after {since}"
            await asyncio.sleep(1.0)
        code = self.stop("poller")
        assert code == 0, (
            f"the poller exited with {code} on SIGTERM:\n{self.process('poller').logs()[-3000:]}"
        )
        previous: dict[str, int] | None = None
        behind: list[str] = []
        while time.monotonic() < deadline:
            self.assert_alive()
            dump = await dump_topics(self.kafka)
            counts = {t: len(r) for t, r in dump.records.items()}
            behind = await self._consumed(dump)
            if not behind and counts == previous:
                return dump
            previous = counts if not behind else None
            await asyncio.sleep(1.0)
        raise AssertionError(f"pipeline did not settle within {timeout}s: {behind[:10]}")


@contextlib.asynccontextmanager
async def prepared_pipeline(
    kafka: KafkaSettings, workdir: Path, options: StackOptions
) -> AsyncIterator[Pipeline]:
    """Simulators started, connections file and credential store written, topics created; no service
    yet (``Pipeline.start`` them). Everything is stopped whatever happens."""
    stack = LocalStack(workdir, kafka, options)
    pipeline = Pipeline(stack)
    try:
        stack.start_simulators()
        stack.write_config()
        await stack.create_topics()
        yield pipeline
    finally:
        for proc in stack.processes.values():
            with contextlib.suppress(Exception):
                proc.terminate(timeout=20.0)
        for server in (stack.syspro_server, stack.mailchimp_server):
            if server.server.started:
                with contextlib.suppress(Exception):
                    server.stop()


@contextlib.asynccontextmanager
async def running_pipeline(
    kafka: KafkaSettings, workdir: Path, options: StackOptions
) -> AsyncIterator[Pipeline]:
    """``prepared_pipeline`` with the four services started and ready."""
    async with prepared_pipeline(kafka, workdir, options) as pipeline:
        for service in SERVICES:
            pipeline.stack.start_service(service)
        await asyncio.gather(*(pipeline.process(s).wait_ready() for s in SERVICES))
        yield pipeline
