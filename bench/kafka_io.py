"""Reading a run's topics back: exact record counts (transaction markers take offsets, so end offsets
overcount) and decoded events, read_committed like the services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.codec import decode
from shared.events import Event
from shared.kafka import make_admin, make_consumer
from shared.settings import KafkaSettings

__all__ = ["count_records", "read_events", "records", "unprocessed"]


async def records(
    settings: KafkaSettings, topic: str, timeout: float = 600.0
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic`` (registry name) up to its end offsets at call time."""
    consumer = make_consumer(
        settings, "mlc-bench-reader", None, max_poll_records=10_000, fetch_max_bytes=64 * 2**20
    )
    await consumer.start()
    try:
        full = settings.topic(topic)
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(full) or set()
        tps = [TopicPartition(full, p) for p in sorted(partitions)]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if end[tp] > 0}
        deadline = asyncio.get_running_loop().time() + timeout
        while pending:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"reading {full} did not reach its end in {timeout:.0f}s")
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for batch in batches.values():
                for record in batch:
                    yield record
            for tp in list(pending):
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()


async def count_records(settings: KafkaSettings, topics: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in topics:
        n = 0
        async for _ in records(settings, topic):
            n += 1
        counts[topic] = n
    return counts


async def read_events(settings: KafkaSettings, topic: str) -> list[tuple[int, Event]]:
    """(Kafka timestamp ms, decoded event) of every record; undecodable records are skipped."""
    out: list[tuple[int, Event]] = []
    async for record in records(settings, topic):
        if record.value is None:
            continue
        try:
            out.append((record.timestamp, decode(record.value)))
        except Exception:
            continue
    return out


async def unprocessed(settings: KafkaSettings, service: str, topics: Iterable[str]) -> int:
    """Committed records of ``topics`` after the group's committed offsets: what ``service`` has not
    processed yet.

    Exact where offset arithmetic is not: a transactional producer leaves a commit marker after its
    records, so a caught-up group sits one offset short of the end of every partition it read.
    """
    admin = make_admin(settings, "mlc-bench-lag")
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.group(service))
    finally:
        await admin.close()
    consumer = make_consumer(settings, "mlc-bench-lag", None, max_poll_records=5000)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(settings.topic(t), p)
            for t in topics
            for p in sorted(consumer.partitions_for_topic(settings.topic(t)) or set())
        ]
        if not tps:
            return 0
        end = await consumer.end_offsets(tps)
        start = {
            tp: (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0) for tp in tps
        }
        pending = [tp for tp in tps if start[tp] < end[tp]]
        if not pending:
            return 0
        consumer.assign(pending)
        for tp in pending:
            consumer.seek(tp, start[tp])
        count = 0
        waiting = set(pending)
        deadline = asyncio.get_running_loop().time() + 60.0
        while waiting:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"counting {service}'s unprocessed records took over 60s")
            batches = await consumer.getmany(*waiting, timeout_ms=1000)
            for tp, batch in batches.items():
                count += sum(1 for r in batch if r.offset < end[tp])
            for tp in list(waiting):
                if await consumer.position(tp) >= end[tp]:
                    waiting.discard(tp)
        return count
    finally:
        await consumer.stop()
