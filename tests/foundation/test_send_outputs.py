"""``send_outputs`` writes what one ``producer.send`` per output would, on the real broker."""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from shared.kafka import Output, make_producer, partition_for, send_outputs, settle
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_CHANGED, DEAD_LETTER
from tests.helpers import read_all, wait_for


def test_partition_for_matches_the_default_partitioner() -> None:
    default = DefaultPartitioner()
    for n in (1, 6, 12):
        parts = list(range(n))
        for i in range(500):
            key = f"acme:C{i:05d}".encode()
            assert partition_for(key, n) == default(key, parts, parts)


async def test_outputs_land_on_the_key_partition_in_order_with_headers_inside_a_transaction(
    kafka: KafkaSettings,
) -> None:
    topic = kafka.topic(CUSTOMER_CHANGED.name)
    outputs = [
        Output(
            CUSTOMER_CHANGED.name, f"acme:C{i % 40:03d}".encode(), f"v{i}".encode(), (("n", str(i).encode()),)
        )
        for i in range(3000)
    ]
    # A record larger than the producer's batch size still goes out, on its key's partition.
    big = Output(CUSTOMER_CHANGED.name, b"acme:C001", b"x" * 300_000)
    dead = Output(DEAD_LETTER.name, None, b"keyless")
    producer = make_producer(kafka, "test-send-outputs", transactional_id="test-send-outputs")
    await producer.start()
    try:
        async with producer.transaction():
            futures = await send_outputs(producer, kafka, [*outputs, big, dead])
        await settle(futures)
        assert len(futures) == len(outputs) + 2
        parts = sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()

    async def everything() -> list[Any] | None:
        # Right after a commit the broker may still report an old last stable offset for a partition,
        # so a single read can stop short: read again until every record is there (or time out).
        found = await read_all(kafka, CUSTOMER_CHANGED.name, timeout=10)
        return found if len(found) >= len(outputs) + 1 else None

    records = await wait_for(everything, timeout=60, interval=0.5, message="every record committed")
    assert len(records) == len(outputs) + 1
    default = DefaultPartitioner()
    by_key: dict[bytes, list[bytes]] = {}
    for rec in records:
        assert rec.partition == default(rec.key, parts, parts)
        by_key.setdefault(rec.key, []).append(rec.value)
        if rec.value != big.value:
            assert rec.headers == (("n", rec.value[1:]),) or list(rec.headers) == [("n", rec.value[1:])]
    for key, values in by_key.items():
        small = [v for v in values if v != big.value]
        expected = [o.value for o in outputs if o.key == key]
        assert small == expected, key
    assert big.value in by_key[b"acme:C001"]
    assert [r.value for r in await read_all(kafka, DEAD_LETTER.name)] == [b"keyless"]
