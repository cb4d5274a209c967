"""The consume-process-produce loop against the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from prometheus_client import REGISTRY

from shared.codec import decode_as, encode
from shared.events import CustomerChanged, CustomerRejected
from shared.kafka import Output
from shared.processor import Record, TransactionalProcessor
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_CHANGED, CUSTOMER_REJECTED, DEAD_LETTER
from tests.helpers import produce, produce_raw, read_all, read_events, wait_for


def _change(customer: str) -> CustomerChanged:
    return CustomerChanged(
        connection_id="acme",
        customer=customer,
        change="created",
        row={"Customer": customer},
        row_hash="h",
        run_id=uuid.uuid4(),
        strategy="snapshot",
    )


async def _reject_everything(records: Sequence[Record]) -> list[Output]:
    out = []
    for rec in records:
        change = decode_as(rec.value, CustomerChanged)
        if change.customer == "boom":
            raise RuntimeError("handler bug on this record")
        rejected = CustomerRejected(
            connection_id=change.connection_id,
            customer=change.customer,
            reason="no_email",
            causation_id=change.event_id,
            correlation_id=change.correlation_id,
        )
        out.append(Output(CUSTOMER_REJECTED.name, rejected.key(), encode(rejected)))
    return out


async def test_outputs_and_offsets_commit_together_and_a_failing_record_is_dead_lettered(
    kafka: KafkaSettings,
) -> None:
    await produce(kafka, CUSTOMER_CHANGED.name, [_change("c1"), _change("boom"), _change("c2")])
    await produce_raw(kafka, CUSTOMER_CHANGED.name, b"not json", key=b"acme:bad")
    processor = TransactionalProcessor(kafka, "mapper", [CUSTOMER_CHANGED.name], _reject_everything, "t1")
    await processor.start()
    stop = asyncio.Event()
    task = asyncio.create_task(processor.run(stop))
    try:
        rejected = await wait_for(
            lambda: _count(kafka, CUSTOMER_REJECTED.name, 2), timeout=60, message="two rejections"
        )
        dead = await wait_for(
            lambda: _count(kafka, DEAD_LETTER.name, 2), timeout=30, message="two dead letters"
        )
    finally:
        stop.set()
        await task
        await processor.close()
    assert sorted(e.customer for e in rejected) == ["c1", "c2"]
    reasons = sorted(dict(r.headers)["mlc.error.reason"].decode() for r in dead)
    assert reasons == ["not_json", "processing_error"]
    assert {r.value for r in dead} >= {b"not json"}


def _lag(group: str) -> float | None:
    samples = [
        s.value
        for metric in REGISTRY.collect()
        if metric.name == "mlc_consumer_lag_records"
        for s in metric.samples
        if s.labels.get("group") == group
    ]
    return sum(samples) if samples else None


async def _count(settings: KafkaSettings, topic: str, n: int) -> list[object] | None:
    if topic == DEAD_LETTER.name:
        records = await read_all(settings, topic, timeout=1)
        return records if len(records) >= n else None
    events = await read_events(settings, topic, timeout=1)
    return events if len(events) >= n else None
