"""The consume-process-produce loop: a batch's outputs and its input offsets in one Kafka transaction.

Lifecycle (like a Kafka Connect task): ``start()`` connects and joins the group; ``run(stop)``
loops until ``stop`` is set; ``close()`` leaves the group and flushes. For every consumed batch the
handler returns the records to produce; they are sent together with the batch's offsets in one
transaction, so a crash either loses both or keeps both: a record's effects are never visible
without its offset advancing, and an offset never advances without its effects.

Errors:
- the handler raises ``Retryable``: nothing is committed, the batch is retried after a backoff;
- the handler raises anything else: the batch is re-run one record at a time and only the records
  that still fail are dead-lettered with the exception, so one bad record never blocks a partition;
- a Kafka error during the transaction: aborted, consumer rewound to the batch start, retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced
from aiokafka.structs import ConsumerRecord

from shared.codec import DecodeError
from shared.kafka import Output, dead_letter, make_consumer, make_producer, report_lag, send_outputs, settle
from shared.metrics import (
    BATCH_SECONDS,
    DEAD_LETTERS,
    RECORDS_CONSUMED,
    RECORDS_PRODUCED,
    TRANSACTION_FAILURES,
)
from shared.settings import KafkaSettings

__all__ = ["Handler", "Record", "Retryable", "TransactionalProcessor"]

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Handler = Callable[[Sequence[Record]], Awaitable[Sequence[Output]]]
PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]


class Retryable(Exception):
    """Raised by a handler when the batch may succeed later (an outside system is down)."""


def _reason(exc: BaseException) -> str:
    """The dead-letter reason: the codec's code for undecodable records, else a processing error."""
    return exc.reason if isinstance(exc, DecodeError) else "processing_error"


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: TransactionalProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Wait for the batch in hand to commit before the partitions move.
        async with self.processor._lock:
            if self.processor.on_revoked and revoked:
                await self.processor.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.processor._lock:
            if self.processor.on_assigned and assigned:
                await self.processor.on_assigned(set(assigned))
            self.processor.assigned.set()


class TransactionalProcessor:
    """Consume ``topics`` as group ``mlc-<service>`` and hand each batch to ``handler``."""

    def __init__(
        self,
        settings: KafkaSettings,
        service: str,
        topics: Sequence[str],
        handler: Handler,
        instance_id: str,
        *,
        max_batch: int = 1000,
        on_assigned: PartitionsHook | None = None,
        on_revoked: PartitionsHook | None = None,
        retry_backoff: float = 1.0,
        max_retry_backoff: float = 30.0,
        consumer_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.group_id = settings.group(service)
        self.topics = list(topics)
        self.handler = handler
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.max_batch = max_batch
        self.retry_backoff = retry_backoff
        self.max_retry_backoff = max_retry_backoff
        self.assigned = asyncio.Event()
        self._lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer = make_consumer(
            settings,
            f"mlc-{service}-{instance_id}",
            self.group_id,
            max_poll_records=max_batch,
            **(consumer_options or {}),
        )
        self.producer: AIOKafkaProducer = make_producer(
            settings, f"mlc-{service}-{instance_id}", transactional_id=f"mlc-{service}-{instance_id}"
        )
        self.batches = 0

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([self.settings.topic(t) for t in self.topics], listener=_Listener(self))

    async def close(self) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self.producer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.retry_backoff
        while not stop.is_set():
            batches = await self.consumer.getmany(timeout_ms=500, max_records=self.max_batch)
            records = [
                rec for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for rec in batches[tp]
            ]
            if not records:
                await report_lag(self.consumer, self.group_id, self.settings.namespace)
                continue
            try:
                await self._process(records)
                backoff = self.retry_backoff
            except ProducerFenced:
                log.error("producer fenced: another instance with this id took over; stopping")
                raise
            except (Retryable, KafkaError) as exc:
                TRANSACTION_FAILURES.labels(self.service).inc()
                log.warning(
                    "batch not committed, will retry",
                    extra={"error": f"{type(exc).__name__}: {exc}", "retry_in_s": round(backoff, 2)},
                )
                self._rewind(records)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, self.max_retry_backoff)
            await report_lag(self.consumer, self.group_id, self.settings.namespace)

    def _rewind(self, records: Sequence[Record]) -> None:
        first: dict[TopicPartition, int] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            first.setdefault(tp, rec.offset)
        for tp, offset in first.items():
            if tp in self.consumer.assignment():
                self.consumer.seek(tp, offset)

    async def _handle_isolating(self, records: Sequence[Record]) -> list[Output]:
        try:
            return list(await self.handler(records))
        except (Retryable, KafkaError):
            raise
        except Exception:
            if len(records) == 1:
                raise
            log.exception("batch handler failed; isolating the failing records")
        outputs: list[Output] = []
        for rec in records:
            try:
                outputs.extend(await self.handler([rec]))
            except (Retryable, KafkaError):
                raise
            except Exception as exc:
                log.exception(
                    "record dead-lettered after a processing error",
                    extra={"topic": rec.topic, "partition": rec.partition, "offset": rec.offset},
                )
                outputs.append(self._dead_letter(rec, _reason(exc), f"{type(exc).__name__}: {exc}", exc))
        return outputs

    def _dead_letter(self, rec: Record, reason: str, message: str, exc: BaseException | None) -> Output:
        topic = rec.topic.removeprefix(self.settings.namespace)
        DEAD_LETTERS.labels(self.service, topic, reason).inc()
        return dead_letter(
            rec, stage=self.service, reason=reason, message=message, group=self.group_id, exception=exc
        )

    async def _process(self, records: Sequence[Record]) -> None:
        started = time.perf_counter()
        async with self._lock:
            # Drop records of partitions revoked while we waited for the lock.
            assignment = self.consumer.assignment()
            records = [r for r in records if TopicPartition(r.topic, r.partition) in assignment]
            if not records:
                return
            try:
                outputs = await self._handle_isolating(records)
            except (Retryable, KafkaError):
                raise
            except Exception as exc:
                rec = records[0]
                log.exception("record dead-lettered after a processing error")
                outputs = [self._dead_letter(rec, _reason(exc), f"{type(exc).__name__}: {exc}", exc)]
            offsets: dict[TopicPartition, int] = {}
            for rec in records:
                offsets[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
            async with self.producer.transaction():
                futures = await send_outputs(self.producer, self.settings, outputs)
                await self.producer.send_offsets_to_transaction(offsets, self.group_id)
            if futures:
                await settle(futures)
        # Count per topic, then touch each labelled metric once: per-record label lookups showed up as
        # a measurable share of the hot path.
        consumed = Counter(rec.topic for rec in records)
        for topic, n in consumed.items():
            RECORDS_CONSUMED.labels(self.service, topic.removeprefix(self.settings.namespace)).inc(n)
        for topic, n in Counter(o.topic for o in outputs).items():
            RECORDS_PRODUCED.labels(self.service, topic).inc(n)
        self.batches += 1
        BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
