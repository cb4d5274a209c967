"""Mapper throughput on generated customers: the pure handler, and the service through the real broker.

    python -m tests.mapper.bench_mapper --rows 10000            # pure: decode, map, decide, encode
    python -m tests.mapper.bench_mapper --rows 10000 --kafka    # the service, consuming and producing

Rows come from the SYSPRO simulator's generator (blank/invalid/shared emails, partial addresses, holds),
narrowed to the columns a poller selects. Pure rates are CPU time of this process; Kafka rates are wall
time from the first batch to the last committed one, with the broker on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from services.mapper.app import MapperService
from services.mapper.pipeline import MapperPipeline
from services.mapper.plan import plan_connections
from services.mapper.tables import MapperTables
from shared.codec import encode
from shared.events import CustomerChanged
from shared.kafka import Output, ensure_topics, make_producer
from shared.processor import Record
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_CHANGED
from simulators.syspro.generator import generate_company
from tests.mapper.factories import CONNECTION, config, record

_SELECTED = """Customer Name ShortName Email Telephone Contact SoldToAddr1 SoldToAddr2 SoldToAddr3 SoldToAddr4
    SoldToAddr5 SoldPostalCode CustomerOnHold CreditStatus Branch Area Salesperson CustomerClass Nationality
    Currency DateCustAdded DateLastSale DateLastPay UserField1 CreditLimit"""
COLUMNS = tuple(_SELECTED.split())
AUDIENCE = {
    "tags": {"from_columns": {"Branch": "branch-", "Area": "area-"}},
    "policy": {"overdue_tags": True, "inactive_after_days_without_sale": 730},
}


def changes(n: int, seed: int = 7) -> list[CustomerChanged]:
    run = uuid.uuid4()
    return [
        CustomerChanged(
            connection_id=CONNECTION,
            customer=row["Customer"],
            change="created",
            row={c: row[c].strip() if isinstance(row[c], str) else row[c] for c in COLUMNS},
            row_hash=uuid.uuid4().hex,
            run_id=run,
            strategy="snapshot",
        )
        for row in generate_company(n, seed)
    ]


def pure(events: list[CustomerChanged], batch: int = 1000) -> tuple[float, int]:
    """Records per second of CPU time through ``MapperPipeline.handle``, and the outputs made."""
    tables = MapperTables()
    for p in range(6):
        tables.load_partition(p, {})
    pipeline = MapperPipeline(plan_connections(config(AUDIENCE)), tables)
    records = [record(encode(e), CUSTOMER_CHANGED.name, i % 6, i, e.key()) for i, e in enumerate(events)]
    outputs = 0
    started = time.process_time()
    for i in range(0, len(records), batch):
        outputs += len(pipeline.handle(records[i : i + batch]))
        tables.commit()
    return len(records) / (time.process_time() - started), outputs


async def through_kafka(events: list[CustomerChanged], bootstrap: str = "127.0.0.1:9092") -> float:
    """Records per second (wall time) through a running ``MapperService`` on a fresh namespace."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap, namespace=f"bench{uuid.uuid4().hex[:8]}.")
    await ensure_topics(kafka)
    producer = make_producer(kafka, "bench")
    await producer.start()
    try:
        pending = [
            await producer.send(kafka.topic(CUSTOMER_CHANGED.name), encode(e), key=e.key()) for e in events
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    service = MapperService(kafka, config(AUDIENCE), "bench")
    handled = 0
    first: float | None = None
    handle = service.pipeline.handle

    def counting(records: Sequence[Record]) -> list[Output]:
        nonlocal handled, first
        first = first or time.perf_counter()
        out = handle(records)
        handled += len(records)
        return out

    service.pipeline.handle = counting  # type: ignore[method-assign]
    stop = asyncio.Event()
    await service.start()
    task = asyncio.create_task(service.run(stop))
    try:
        while handled < len(events):
            await asyncio.sleep(0.05)
            if task.done():
                task.result()
        assert service.processor is not None
        while service.processor.batches == 0:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - (first or time.perf_counter())
    finally:
        stop.set()
        await task
        await service.close()
    return len(events) / elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--kafka", action="store_true", help="also run the service through the broker")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    args: Any = parser.parse_args(argv)
    events = changes(args.rows)
    rate, outputs = pure(events)
    print(f"pure handler: {args.rows} changes -> {outputs} records, {rate:,.0f} changes/s (CPU time)")
    if args.kafka:
        print(
            f"through Kafka: {asyncio.run(through_kafka(events, args.bootstrap)):,.0f} changes/s (wall time)"
        )


if __name__ == "__main__":
    main()
