"""The mapper service shell: Kafka in, ``MapperPipeline`` in the middle, Kafka out.

``TransactionalProcessor`` consumes ``syspro.customer.changed.v1`` and ``mailchimp.member.result.v1``
(co-partitioned) and commits each batch's commands, rejections, state records and offsets in one
transaction. Member states of the assigned partitions are read from ``mailchimp.member.state.v1`` on
assignment, and the email-ownership table in full at start, both written into the local state store
(``tables``: a SQLite file, ``MLC_MAPPER_STATE_DIR``) as they are read; ownership is then followed
(``ownership_feed``). The tables change while a batch is handled, so they are committed or rolled back
with its transaction (``_StatefulProcessor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor

from services.mapper import metrics
from services.mapper.ownership_feed import OwnershipFeed, OwnershipRecord
from services.mapper.pipeline import MapperPipeline
from services.mapper.plan import plan_connections
from services.mapper.records import CustomerMemory, memory_from_state
from services.mapper.settings import MapperSettings
from services.mapper.tables import MapperTables
from shared.connections import ConnectionsConfig, load_connections
from shared.events import MemberState
from shared.kafka import Output, read_table
from shared.processor import Record, TransactionalProcessor
from shared.settings import KafkaSettings, ServiceSettings, load
from shared.topics import CUSTOMER_CHANGED, MEMBER_RESULT, MEMBER_STATE

__all__ = ["MapperService", "create_service"]

log = logging.getLogger(__name__)


class _StatefulProcessor(TransactionalProcessor):
    """The shared processor, with the mapper's memory committed or rolled back with each transaction.

    Before a batch, ownership records followed from the topic are applied (no batch is in flight, so
    nothing is undone over them); after it, the undo log is dropped on commit or replayed on abort.
    """

    def __init__(self, *args: Any, service: MapperService, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._service = service

    async def _process(self, records: Sequence[Record]) -> None:
        self._service.apply_followed()
        try:
            await super()._process(records)
        except BaseException:
            self._service.tables.rollback()
            self._service.pipeline.end_transaction(committed=False)
            raise
        self._service.tables.commit()
        self._service.pipeline.end_transaction(committed=True)


class MapperService:
    name = "mapper"

    def __init__(
        self,
        kafka: KafkaSettings,
        connections: ConnectionsConfig,
        instance_id: str,
        settings: MapperSettings | None = None,
    ) -> None:
        self.kafka = kafka
        self.settings = settings or MapperSettings()
        self.instance_id = instance_id
        self.incarnation = uuid.uuid4().hex.encode()
        self.tables = MapperTables(
            track_own_writes=self.settings.follow_ownership,
            state_dir=self.settings.state_dir,
            name=f"mapper-{_file_safe(instance_id)}-{self.incarnation.decode()[:8]}",
            cache_mb=self.settings.state_cache_mb,
        )
        self.pipeline = MapperPipeline(
            plan_connections(connections),
            self.tables,
            namespace=kafka.namespace,
            group_id=kafka.group("mapper"),
            writer_id=self.incarnation,
        )
        self.feed = OwnershipFeed(kafka, f"mlc-mapper-{instance_id}-owners", self.incarnation)
        self._followed: list[OwnershipRecord] = []
        self._stop_follow = asyncio.Event()
        self._follow_task: asyncio.Task[None] | None = None
        self._assigned: set[int] = set()
        self._just_revoked: set[int] = set()
        self.processor: _StatefulProcessor | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.close()
            raise

    async def _start(self) -> None:
        started = time.perf_counter()
        await self.feed.load(self.tables.load_owners)
        await self.feed.partitions(MEMBER_STATE.name)
        metrics.STATE_LOAD_SECONDS.labels("email_ownership").set(time.perf_counter() - started)
        metrics.OWNERS.set(len(self.tables.owners))
        log.info("email ownership loaded", extra={"entries": len(self.tables.owners)})
        if self.settings.follow_ownership:
            self._follow_task = asyncio.create_task(self.feed.follow(self._deliver, self._stop_follow))
        self.processor = _StatefulProcessor(
            self.kafka,
            self.name,
            [CUSTOMER_CHANGED.name, MEMBER_RESULT.name],
            self._handle,
            self.instance_id,
            max_batch=self.settings.max_batch,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            service=self,
            # Range keeps partition p of both inputs on one instance (co-partitioning); aiokafka's
            # default round-robin does not once the instance count does not divide the partitions.
            consumer_options={"partition_assignment_strategy": (RangePartitionAssignor,)},
        )
        await self.processor.start()

    async def run(self, stop: asyncio.Event) -> None:
        assert self.processor is not None, "start() first"
        await self.processor.run(stop)

    async def close(self) -> None:
        self._stop_follow.set()
        if self._follow_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._follow_task, timeout=10)
        try:
            if self.processor is not None:
                await self.processor.close()
        finally:
            try:
                await self.feed.close()
            finally:
                self.tables.close()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        assigned = self.processor is not None and self.processor.assigned.is_set()
        following = self._follow_task is None or not self._follow_task.done()
        return assigned and following, {
            "partitions": sorted(self._assigned),
            "member_states": self.tables.member_count,
            "email_owners": len(self.tables.owners),
            "following_ownership": self._follow_task is not None and not self._follow_task.done(),
        }

    def http_app(self) -> Any | None:
        return None

    # --- the per-batch path -------------------------------------------------------------------

    async def _handle(self, records: Sequence[Record]) -> list[Output]:
        return self.pipeline.handle(records)

    def _deliver(self, records: list[OwnershipRecord]) -> None:
        self._followed.extend(records)

    def apply_followed(self) -> None:
        """Apply ownership records other instances (or earlier batches) committed since the last batch."""
        if self._followed:
            followed, self._followed = self._followed, []
            for key, customer, own in followed:
                if self.tables.apply_committed(key, customer, own) and customer is None and not own:
                    self.pipeline.freed_elsewhere.append(key)
        metrics.OWNERS.set(len(self.tables.owners))
        metrics.MEMBER_STATES.set(self.tables.member_count)
        metrics.WAITING.set(self.tables.waiting_count)

    # --- partitions ---------------------------------------------------------------------------

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._just_revoked = {tp.partition for tp in revoked}

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        partitions = {tp.partition for tp in assigned}
        # A partition's memory is kept only if it stayed ours: revoked and re-assigned in this rebalance.
        keep = partitions & self._assigned & self._just_revoked
        for partition in self._assigned - keep:
            self.tables.drop_partition(partition)
        load_now = sorted(partitions - keep)
        if load_now:
            started = time.perf_counter()
            states = 0
            # One partition at a time, written to the store as it is decoded: a restore holds one
            # partition's records, not every partition's records and states at once.
            for partition in load_now:
                table = await read_table(
                    self.kafka,
                    MEMBER_STATE.name,
                    [partition],
                    client_id=f"mlc-mapper-{self.instance_id}-state",
                )
                self.tables.load_partition(partition, _member_states(partition, table))
                states += len(table)
                del table
            metrics.STATE_LOAD_SECONDS.labels("member_state").set(time.perf_counter() - started)
            log.info("member states loaded", extra={"partitions": load_now, "states": states})
        self._assigned = partitions
        self._just_revoked = set()
        metrics.MEMBER_STATES.set(self.tables.member_count)


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64]


def _member_states(partition: int, table: dict[bytes, bytes]) -> Iterator[tuple[str, CustomerMemory]]:
    """Decode one partition's member states, one by one. A record that is not a valid ``MemberState``
    (something another producer wrote onto the compacted topic) is skipped with a warning: it cannot be
    state, and refusing to start over it would stop the whole pipeline."""
    for key, value in table.items():
        try:
            memory = memory_from_state(MemberState.model_validate_json(value))
        except ValueError as exc:
            metrics.INVALID_STATE_RECORDS.inc()
            log.warning(
                "ignoring an invalid member-state record",
                extra={"partition": partition, "error": str(exc).splitlines()[0][:300]},
            )
            continue
        yield key.decode("utf-8", "replace"), memory


def create_service(settings: ServiceSettings) -> MapperService:
    return MapperService(
        load(KafkaSettings),
        load_connections(settings.connections_file),
        settings.instance_id,
        load(MapperSettings),
    )
