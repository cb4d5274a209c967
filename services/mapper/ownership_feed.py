"""The email-ownership table (``mailchimp.email.owner.v1``): read in full at start, then followed.

Ownership is global (a customer on any partition may claim any address), so every mapper instance holds
the whole table. One consumer, without a group, is assigned every partition: it reads from the
beginning to the end offsets taken at start (the initial table), then keeps reading, so no record falls
between the load and the follow. Only committed records are seen. With one instance the follow is
redundant (its own writes are in memory already); with several it is how an instance learns the others'
claims and releases, a short while after they commit (docs/adr/0021).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.mapper.pipeline import WRITER_HEADER
from shared.kafka import make_consumer
from shared.settings import KafkaSettings
from shared.topics import EMAIL_OWNERSHIP

__all__ = ["OwnershipFeed", "OwnershipRecord"]

log = logging.getLogger(__name__)

OwnershipRecord = tuple[str, str | None, bool]
"""(key ``connection:audience:hash``, owning customer or None for a tombstone, written by this process)."""


def _owner(value: bytes | None) -> str | None:
    if value is None:
        return None
    record = orjson.loads(value)
    if not isinstance(record, dict) or record.get("event_type") != "EmailOwnership":
        raise ValueError("not an EmailOwnership record")
    customer = record.get("customer")
    if not isinstance(customer, str):
        raise ValueError("EmailOwnership record without a customer")
    return customer


class OwnershipFeed:
    def __init__(self, settings: KafkaSettings, client_id: str, incarnation: bytes) -> None:
        self.settings = settings
        self.client_id = client_id
        self.incarnation = incarnation
        self._consumer: AIOKafkaConsumer | None = None
        self.records_followed = 0

    async def load(self, apply: Callable[[Iterable[tuple[str, str | None]]], None]) -> int:
        """Start the consumer and read the table as committed right now, handing ``apply`` each chunk of
        ``(key, owner or None for a tombstone)`` in log order (the table is never held whole here).
        Returns the number of records read."""
        consumer = self._consumer = make_consumer(self.settings, self.client_id, None, max_poll_records=5000)
        await consumer.start()
        topic = self.settings.topic(EMAIL_OWNERSHIP.name)
        partitions = await self.partitions(EMAIL_OWNERSHIP.name)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        loaded = 0
        pending = {tp for tp in tps if end[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            chunk = [
                entry
                for records in batches.values()
                for rec in records
                if (entry := self._loaded(rec.key, rec.value)) is not None
            ]
            if chunk:
                apply(chunk)
                loaded += len(chunk)
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
        return loaded

    async def partitions(self, name: str) -> set[int]:
        """The partitions of a registry topic, waiting for metadata to show a topic created a moment ago.

        ``shared.kafka.read_table`` reads an unknown topic as empty; the mapper checks its state topics
        exist this way first, since an empty member state would forget terminal members.
        """
        if self._consumer is None:
            raise RuntimeError("load() first")
        topic = self.settings.topic(name)
        client = self._consumer._client  # metadata of a topic the consumer is not assigned
        await client.add_topic(topic)
        deadline = time.monotonic() + self.settings.request_timeout_ms / 1000
        while not (partitions := self._consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {topic} does not exist: run `ml-connector topics create`")
            await client.force_metadata_update()
            await asyncio.sleep(0.2)
        return set(partitions)

    @staticmethod
    def _loaded(key: bytes | None, value: bytes | None) -> tuple[str, str | None] | None:
        if key is None:
            return None
        try:
            return key.decode(), _owner(value)
        except ValueError as exc:
            log.warning("ignoring a malformed ownership record", extra={"error": str(exc)})
            return None

    async def follow(self, deliver: Callable[[list[OwnershipRecord]], None], stop: asyncio.Event) -> None:
        """Hand every committed record after the initial load to ``deliver``, until ``stop`` is set."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("load() first")
        backoff = 1.0
        while not stop.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=500)
                backoff = 1.0
            except KafkaError as exc:
                log.warning(
                    "ownership follow failed, retrying", extra={"error": str(exc), "retry_in_s": backoff}
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            delivered: list[OwnershipRecord] = []
            for records in batches.values():
                for rec in records:
                    if rec.key is None:
                        continue
                    try:
                        owner = _owner(rec.value)
                    except ValueError as exc:
                        log.warning("ignoring a malformed ownership record", extra={"error": str(exc)})
                        continue
                    own = any(k == WRITER_HEADER and v == self.incarnation for k, v in rec.headers or ())
                    delivered.append((rec.key.decode(), owner, own))
            if delivered:
                self.records_followed += len(delivered)
                deliver(delivered)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
