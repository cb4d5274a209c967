"""The audit service shell: consume every event topic into the audit store, serve the API.

Lifecycle (``shared.runtime.Service``): ``start`` opens (and migrates) the store and joins the group
``<ns>mlc-audit``; ``run`` stores batch after batch until asked to stop; ``close`` leaves the group.

Where it resumes: the store, not Kafka. On every partition assignment the consumer seeks to the stored
position + 1 (or the beginning when the store has nothing from that partition), so rows and positions
can never disagree. Offsets are still committed to Kafka after each SQL commit, only so lag metrics
and ``kafka-consumer-groups`` show where the audit is; resetting the audit's group changes nothing.
To rebuild the audit, point it at an empty database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from sqlalchemy import Engine, func, select

from shared.kafka import make_consumer, report_lag
from shared.metrics import BATCH_SECONDS, RECORDS_CONSUMED
from shared.settings import KafkaSettings, ServiceSettings, load
from shared.topics import (
    CUSTOMER_CHANGED,
    CUSTOMER_REJECTED,
    DEAD_LETTER,
    MEMBER_RESULT,
    MEMBER_UPSERT,
    POLL_RUN,
)

from .api import create_api, disabled_api
from .metrics import (
    RECORDS_ALREADY_STORED,
    ROWS_STORED,
    STORE_RETRIES,
    STORE_WRITE_SECONDS,
    SYNC_STATE_CUSTOMERS,
)
from .projection import ConsumedRecord
from .schema import sync_state
from .settings import AuditServiceSettings
from .store import AppendResult, AuditStore
from .sync_state import STATUSES

__all__ = ["AUDITED_TOPICS", "AuditService", "consumed_records", "create_service"]

log = logging.getLogger(__name__)

AUDITED_TOPICS = (CUSTOMER_CHANGED, POLL_RUN, MEMBER_UPSERT, MEMBER_RESULT, CUSTOMER_REJECTED, DEAD_LETTER)
"""Every event topic; not the compacted state topics, which repeat what these already say."""


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: AuditService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # The batch in hand commits (SQL, then Kafka) before its partitions move.
        async with self.service.lock:
            pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.service.lock:
            await self.service.seek_to_stored(assigned)


class AuditService:
    """Projects every event into the audit store and serves the audit API."""

    name = "audit"

    def __init__(self, kafka: KafkaSettings, settings: AuditServiceSettings, instance_id: str) -> None:
        self.kafka = kafka
        self.settings = settings
        self.instance_id = instance_id
        self.group_id = kafka.group(self.name)
        self.lock = asyncio.Lock()
        self.store: AuditStore | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.assigned: set[TopicPartition] = set()
        self.last_error: str | None = None
        self.last_write_at: float | None = None
        self.batches = 0
        self.api_enabled = settings.api_token is not None or settings.api_insecure
        self._api: Any = create_api(self._engine, settings.api_token) if self.api_enabled else disabled_api()

    def _engine(self) -> Engine | None:
        return self.store.engine if self.store is not None else None

    async def start(self) -> None:
        if not self.api_enabled:
            log.warning(
                "audit API disabled: set MLC_AUDIT_API_TOKEN (`ml-connector audit new-token` makes one), "
                "or MLC_AUDIT_API_INSECURE=true on a trusted network"
            )
        self.store = await asyncio.to_thread(
            AuditStore.open, self.settings.db_url, namespace=self.kafka.namespace
        )
        self.consumer = make_consumer(
            self.kafka,
            f"mlc-audit-{self.instance_id}",
            self.group_id,
            max_poll_records=self.settings.batch_size,
        )
        await self.consumer.start()
        self.consumer.subscribe([self.kafka.topic(t.name) for t in AUDITED_TOPICS], listener=_Listener(self))

    async def seek_to_stored(self, assigned: set[TopicPartition]) -> None:
        """Point each newly assigned partition just past what the store holds."""
        assert self.store is not None and self.consumer is not None
        stored = await asyncio.to_thread(self.store.positions)
        for tp in sorted(assigned):
            offset = stored.get((tp.topic.removeprefix(self.kafka.namespace), tp.partition))
            if offset is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset + 1)
        self.assigned = set(self.consumer.assignment())
        log.info("partitions assigned", extra={"partitions": len(self.assigned)})

    async def run(self, stop: asyncio.Event) -> None:
        assert self.consumer is not None
        gauges = asyncio.create_task(self._refresh_state_gauges(stop))
        backoff = 0.5
        try:
            while not stop.is_set():
                fetched = await self.consumer.getmany(timeout_ms=500, max_records=self.settings.batch_size)
                records = [rec for tp in sorted(fetched) for rec in fetched[tp]]
                if records:
                    try:
                        await self._store(records)
                        backoff = 0.5
                        self.last_error = None
                    except Exception as exc:
                        # Nothing was committed: read the batch again after a pause. A record is
                        # never skipped, so a store that stays down stops the audit visibly.
                        STORE_RETRIES.inc()
                        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                        log.exception("audit batch not stored; retrying", extra={"retry_in_s": backoff})
                        self._rewind(records)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=backoff)
                        backoff = min(backoff * 2, 30.0)
                await report_lag(self.consumer, self.group_id, self.kafka.namespace)
        finally:
            gauges.cancel()

    async def _store(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        assert self.store is not None and self.consumer is not None
        started = time.perf_counter()
        async with self.lock:
            assignment = self.consumer.assignment()
            records = [r for r in records if TopicPartition(r.topic, r.partition) in assignment]
            if not records:
                return
            consumed = consumed_records(records, self.kafka.namespace)
            result = await asyncio.to_thread(self.store.append, consumed)
            STORE_WRITE_SECONDS.observe(time.perf_counter() - started)
            offsets = {TopicPartition(r.topic, r.partition): r.offset + 1 for r in records}
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:
                # The store holds the truth; Kafka's copy catches up with the next batch.
                log.warning(
                    "could not commit offsets to Kafka", extra={"error": f"{type(exc).__name__}: {exc}"}
                )
        self._count(records, result)
        self.batches += 1
        self.last_write_at = time.time()
        BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    def _count(self, records: Sequence[ConsumerRecord[bytes, bytes]], result: AppendResult) -> None:
        ns = self.kafka.namespace
        per_topic: dict[str, int] = {}
        for r in records:
            topic = r.topic.removeprefix(ns)
            per_topic[topic] = per_topic.get(topic, 0) + 1
        for topic, n in per_topic.items():
            RECORDS_CONSUMED.labels(self.name, topic).inc(n)
        for (topic, kind), n in result.by_kind.items():
            ROWS_STORED.labels(topic, kind).inc(n)
        if result.already_stored:
            RECORDS_ALREADY_STORED.inc(result.already_stored)

    def _rewind(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        assert self.consumer is not None
        first: dict[TopicPartition, int] = {}
        for r in records:
            first.setdefault(TopicPartition(r.topic, r.partition), r.offset)
        assignment = self.consumer.assignment()
        for tp, offset in first.items():
            if tp in assignment:
                self.consumer.seek(tp, offset)

    async def _refresh_state_gauges(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.store is not None:
                try:
                    counts = await asyncio.to_thread(_status_counts, self.store.engine)
                except Exception:
                    log.warning("could not count sync states for metrics", exc_info=True)
                else:
                    for status in STATUSES:
                        SYNC_STATE_CUSTOMERS.labels(status).set(counts.get(status, 0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.state_metrics_interval_seconds)

    async def close(self) -> None:
        try:
            if self.consumer is not None:
                await self.consumer.stop()
        finally:
            if self.store is not None:
                self.store.close()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        ready = self.store is not None and self.consumer is not None and self.last_error is None
        return ready, {
            "group": self.group_id,
            "assigned_partitions": len(self.assigned),
            "batches": self.batches,
            "last_write_age_s": round(time.time() - self.last_write_at, 1) if self.last_write_at else None,
            "last_error": self.last_error,
            "api": "enabled" if self.api_enabled else "disabled",
        }

    def http_app(self) -> Any | None:
        return self._api


def consumed_records(records: Sequence[ConsumerRecord[bytes, bytes]], namespace: str) -> list[ConsumedRecord]:
    """The records as the store takes them: topics without the deployment's namespace."""
    return [
        ConsumedRecord(
            r.topic.removeprefix(namespace),
            r.partition,
            r.offset,
            r.timestamp,
            r.key,
            r.value,
            # Only dead letters carry headers: skip the generator for every other record.
            tuple((k, v) for k, v in r.headers) if r.headers else (),
        )
        for r in records
    ]


def _status_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(sync_state.c.status, func.count()).group_by(sync_state.c.status))
        return {str(status): int(n) for status, n in rows}


def create_service(settings: ServiceSettings) -> AuditService:
    return AuditService(load(KafkaSettings), load(AuditServiceSettings), settings.instance_id)
