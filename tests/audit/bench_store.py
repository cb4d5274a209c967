"""Measure the audit's write path: ``python -m tests.audit.bench_store URL [CUSTOMERS] [BATCH]``.

Each customer is three events (change, command, result), as in the pipeline benchmark. Only
``AuditStore.append`` is timed; records are generated batch by batch outside the clock. Prints wall
and CPU rates (the CPU rate is what the audit costs, whatever else shares the machine).

``--service`` instead produces the events to Kafka (``KAFKA_BOOTSTRAP_SERVERS``, a fresh namespace)
and times the audit service consuming them all: the rate it catches up at.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import uuid

from sqlalchemy import func, select

from services.audit.app import AuditService
from services.audit.schema import events
from services.audit.settings import AuditServiceSettings
from services.audit.store import AuditStore
from shared.codec import encode
from shared.events import Event
from shared.kafka import ensure_topics, make_producer
from shared.settings import KafkaSettings
from tests.audit.factories import TOPIC_OF, Flow, Records


def _events(flow: Flow, start: int, count: int) -> list[Event]:
    out: list[Event] = []
    for i in range(start, start + count):
        change = flow.change(f"{i:06d}")
        command = flow.command(change)
        out += [change, command, flow.synced(command)]
    return out


def bench_store(url: str, customers: int, batch: int) -> None:
    store = AuditStore.open(url)
    flow, recs = Flow(), Records(partitions=6)
    per_batch = max(1, batch // 3)
    wall = cpu = 0.0
    gc.collect()
    for start in range(0, customers, per_batch):
        records = recs.many(_events(flow, start, min(per_batch, customers - start)))
        t, c = time.perf_counter(), time.process_time()
        store.append(records)
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
    n = customers * 3
    rates = f"{wall:.1f} s wall ({n / wall:,.0f}/s), {cpu:.1f} s CPU ({n / cpu:,.0f}/s)"
    print(f"{url.split('://')[0]}: {n} events in {rates}")
    store.close()


async def bench_service(url: str, customers: int, batch: int) -> None:
    kafka = KafkaSettings(namespace=f"bench{uuid.uuid4().hex[:8]}.")
    await ensure_topics(kafka)
    producer = make_producer(kafka, "bench-audit")
    await producer.start()
    try:
        flow = Flow()
        for start in range(0, customers, 1000):
            futures = [
                await producer.send(kafka.topic(TOPIC_OF[e.event_type]), encode(e), key=e.key())
                for e in _events(flow, start, min(1000, customers - start))
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    settings = AuditServiceSettings(db_url=url, batch_size=batch, api_insecure=True)
    service = AuditService(kafka, settings, "bench")
    stop = asyncio.Event()
    await service.start()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(service.run(stop))
    total = customers * 3
    assert service.store is not None
    while True:
        with service.store.engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(events)) or 0
        if stored >= total:
            break
        await asyncio.sleep(0.5)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop.set()
    await task
    await service.close()
    rates = f"{wall:.1f} s wall ({total / wall:,.0f}/s), {cpu:.1f} s CPU ({total / cpu:,.0f}/s)"
    print(f"service: {total} events in {rates}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("customers", type=int, nargs="?", default=20_000)
    parser.add_argument("batch", type=int, nargs="?", default=3000)
    parser.add_argument("--service", action="store_true")
    args = parser.parse_args()
    if args.service:
        asyncio.run(bench_service(args.url, args.customers, args.batch))
    else:
        bench_store(args.url, args.customers, args.batch)


if __name__ == "__main__":
    main()
