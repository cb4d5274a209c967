"""The loader service shell: consume ``MailchimpMemberUpsert`` commands, apply them, commit results.

The shell wires the parts together: a ``PipelinedProcessor`` (``pipeline.py``, the Kafka loop) hands
each consumed batch to the ``CommandHandler`` (a second batch may start while the first finishes) and
commits each batch's results and dead letters together with its offsets, in order. The shell also
keeps the connection limiter informed of the consumer group's size (``membership.py``): on every
rebalance, before the new assignment is processed, and every ``MLC_LOADER_GROUP_REFRESH_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.loader.handler import CommandHandler
from services.loader.limiter import LimiterRegistry
from services.loader.mailchimp_client import ClientPool, RetryPolicy
from services.loader.membership import describe_group_size, lower_bound
from services.loader.metrics import GROUP_SIZE, limiter_changed
from services.loader.pipeline import PipelinedProcessor
from services.loader.settings import LoaderSettings
from services.loader.targets import Targets
from shared.connections import ConnectionsConfig, load_connections
from shared.credentials import CredentialStore, open_store
from shared.kafka import make_admin
from shared.settings import CredentialSettings, KafkaSettings, MailchimpSettings, ServiceSettings, load
from shared.topics import MEMBER_UPSERT

__all__ = ["LoaderService", "create_service"]

log = logging.getLogger(__name__)


class LoaderService:
    name = "loader"

    def __init__(
        self,
        service: ServiceSettings,
        kafka: KafkaSettings,
        mailchimp: MailchimpSettings,
        settings: LoaderSettings,
        connections: ConnectionsConfig,
        store: CredentialStore,
    ) -> None:
        self.service = service
        self.kafka = kafka
        self.mailchimp = mailchimp
        self.settings = settings
        self.limiters = LimiterRegistry(
            mailchimp.max_in_flight,
            settings.limit_recovery_seconds,
            settings.group_shrink_grace_seconds,
            on_change=limiter_changed,
        )
        self.pool = ClientPool(mailchimp, settings)
        policy = RetryPolicy.from_settings(settings)
        self.targets = Targets(connections, store, mailchimp.api_base, self.pool, self.limiters, policy)
        self.group_id = kafka.group(self.name)
        self.handler = CommandHandler(self.targets, settings, self.group_id)
        self._processor: PipelinedProcessor | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._refresh_lock = asyncio.Lock()
        self._started = False

    @property
    def processor(self) -> PipelinedProcessor:
        """The consume-process-commit loop (built in ``start``: aiokafka clients need the running loop)."""
        if self._processor is None:
            raise RuntimeError("the loader has not been started")
        return self._processor

    async def start(self) -> None:
        settings = self.settings
        self._processor = PipelinedProcessor(
            self.kafka,
            self.name,
            [MEMBER_UPSERT.name],
            self.handler,
            self.service.instance_id,
            depth=settings.pipeline_depth,
            max_depth=settings.max_pipeline_depth,
            hungry=self._hungry,
            split=self.handler.split,
            max_batch=settings.max_batch,
            on_assigned=self._on_assigned,
            on_revoked=self._on_revoked,
            consumer_options={
                "max_partition_fetch_bytes": settings.max_partition_fetch_bytes,
                "fetch_max_bytes": max(52_428_800, settings.max_partition_fetch_bytes),
            },
        )
        processor = self._processor
        self.handler.backlog = lambda: processor.backlog
        self.handler.committed_offset = processor.committed_offset
        self.handler.wait_committed = processor.wait_committed
        self._admin = make_admin(self.kafka, f"mlc-{self.name}-{self.service.instance_id}-admin")
        await self._admin.start()
        await self.processor.start()
        self._started = True

    def _hungry(self) -> bool:
        """A connection slot is free and nothing waits for it: another batch could use it now."""
        limiters = self.limiters.limiters()
        return not limiters or any(limiter.spare > 0 for limiter in limiters)

    async def run(self, stop: asyncio.Event) -> None:
        refresher = asyncio.create_task(self._refresh_forever(stop), name="loader-group-size")
        try:
            await self.processor.run(stop)
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    async def close(self) -> None:
        try:
            if self._processor is not None:
                await self._processor.close()
        finally:
            await self.pool.aclose()
            if self._admin is not None:
                await self._admin.close()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        limits = {
            limiter.name: {"limit": limiter.limit, "share": limiter.ceiling, "in_flight": limiter.in_flight}
            for limiter in self.limiters.limiters()
        }
        processor = self._processor
        return self._started, {
            "group_size": self.limiters.group.value,
            "share_per_key": self.limiters.share,
            "keys": limits,
            "assigned": processor is not None and processor.assigned.is_set(),
            "batches": processor.batches if processor is not None else 0,
        }

    def http_app(self) -> Any | None:
        return None

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.refresh_group_size(len(assigned))

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.refresh_group_size(None)

    async def _refresh_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.group_refresh_seconds)
            if not stop.is_set():
                await self.refresh_group_size(None)

    async def refresh_group_size(self, assigned: int | None) -> int:
        """Re-read the group size and resize every key's share; returns the size now believed."""
        async with self._refresh_lock:
            size = await describe_group_size(self._admin, self.group_id) if self._admin else None
            if size is None:
                owned = assigned if assigned is not None else len(self.processor.consumer.assignment())
                # Kafka could not say: assume at least as many workers as the partition split implies.
                size = max(self.limiters.group.value, lower_bound(MEMBER_UPSERT.partitions, owned))
            believed = self.limiters.set_group_size(size)
            GROUP_SIZE.set(believed)
            return believed


def create_service(settings: ServiceSettings) -> LoaderService:
    """Build the loader from the environment and the connections file (fails fast when invalid)."""
    connections = load_connections(settings.connections_file)
    store = open_store(load(CredentialSettings))
    # Every audience's credential must decrypt now: a wrong master key is a start-up error, not a
    # failure of every command later.
    for connection in connections.connections:
        for audience in connection.audiences:
            store.get(audience.credential)
    return LoaderService(
        settings,
        load(KafkaSettings),
        load(MailchimpSettings),
        load(LoaderSettings),
        connections,
        store,
    )
