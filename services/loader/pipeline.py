"""The loader's consume-process-commit loop, with up to ``depth`` consumed batches in flight.

``shared.processor.TransactionalProcessor`` handles one batch at a time: while a batch's results and
offsets are committed, and while the next batch is fetched and decoded, no request is in flight, and
the slowest request of a batch idles every other connection slot. For the loader those gaps are lost
Mailchimp capacity (a slot is the scarce resource), so this loop starts the handler on batch k+1
while batch k is still running, and commits batches strictly in order, each in its own Kafka
transaction (results, dead letters and offsets together), exactly as the shared processor does.

Guarantees kept:
- an offset is committed only in the transaction that carries its batch's results;
- batches commit in consumption order, so a later batch never commits while an earlier one failed;
- a customer's commands still apply in offset order across batches (the handler chains a key's
  commands behind the ones still running from the previous batch);
- a rebalance waits until every batch in flight is committed (or abandoned) before partitions move;
- ``Retryable`` (or a Kafka error) from batch k abandons k and every later batch, rewinds the
  consumer to k's first offsets and retries after a backoff; earlier batches still commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from services.loader.metrics import RENAMES_HELD
from shared.codec import DecodeError
from shared.kafka import Output, dead_letter, make_consumer, make_producer, report_lag, send_outputs, settle
from shared.metrics import (
    BATCH_SECONDS,
    DEAD_LETTERS,
    RECORDS_CONSUMED,
    RECORDS_PRODUCED,
    TRANSACTION_FAILURES,
)
from shared.processor import Handler, Record, Retryable
from shared.settings import KafkaSettings

__all__ = ["PipelinedProcessor"]

log = logging.getLogger(__name__)

PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]


@dataclass(eq=False)
class _Batch:
    records: list[Record]
    task: asyncio.Task[list[Output]]
    started: float = field(default_factory=time.perf_counter)

    def first_offsets(self) -> dict[TopicPartition, int]:
        first: dict[TopicPartition, int] = {}
        for rec in self.records:
            first.setdefault(TopicPartition(rec.topic, rec.partition), rec.offset)
        return first

    def next_offsets(self) -> dict[TopicPartition, int]:
        return {TopicPartition(r.topic, r.partition): r.offset + 1 for r in self.records}


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: PipelinedProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.processor._lock:
            self.processor._generation += 1
            await self.processor._drain()
            if self.processor.on_revoked and revoked:
                await self.processor.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self.processor._lock:
            self.processor._generation += 1
            if self.processor.on_assigned and assigned:
                await self.processor.on_assigned(set(assigned))
            self.processor.assigned.set()


class _Abandoned(Exception):
    """A batch could not be committed; it and every later batch are to be consumed again."""


class PipelinedProcessor:
    """Consume ``topics`` as group ``mlc-<service>``; ``handler`` runs on up to ``depth`` batches at once."""

    def __init__(
        self,
        settings: KafkaSettings,
        service: str,
        topics: Sequence[str],
        handler: Handler,
        instance_id: str,
        *,
        depth: int = 2,
        max_depth: int | None = None,
        hungry: Callable[[], bool] | None = None,
        split: Callable[[Sequence[Record]], int | None] | None = None,
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
        self.depth = max(1, depth)
        #: Beyond ``depth``, more batches are started (up to ``max_depth``) while ``hungry()`` says the
        #: handler has idle capacity: small batches then still fill every connection slot.
        self.max_depth = max(self.depth, max_depth or self.depth)
        self.hungry = hungry or (lambda: False)
        #: Where to cut a fetched batch: the part from the cut is handled only once every earlier batch
        #: is committed (the loader cuts before a rename that follows its customer's earlier command).
        self.split = split or (lambda records: None)
        self.max_batch = max_batch
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
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
        self._inflight: deque[_Batch] = deque()
        #: Bumped on every rebalance: records whose fetch spanned one are consumed again (``_refetch``).
        self._generation = 0
        self._failed = False
        #: Records in the assigned partitions not yet handed to the handler (as of the last fetch).
        self.backlog = 0
        #: Per partition, the next offset this instance committed (``wait_committed`` watches it).
        self._committed: dict[TopicPartition, int] = {}
        self._commit_event = asyncio.Event()
        #: Set while a batch cut by ``split`` waits: completes once that batch reached the handler.
        self._gate: asyncio.Future[None] | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe([self.settings.topic(t) for t in self.topics], listener=_Listener(self))

    async def close(self) -> None:
        await self._abandon(list(self._inflight))
        try:
            await self.consumer.stop()
        finally:
            await self.producer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.retry_backoff
        while not stop.is_set():
            records: list[Record] = []
            generation = self._generation
            if self._may_start():
                # With a batch in flight this also paces the loop: it returns within 20 ms.
                batches = await self.consumer.getmany(
                    timeout_ms=20 if self._inflight else 500, max_records=self.max_batch
                )
                records = [
                    r for tp in sorted(batches, key=lambda t: (t.topic, t.partition)) for r in batches[tp]
                ]
                self.backlog = await self._backlog()
            failed = False
            async with self._lock:
                if records and generation != self._generation:
                    await self._refetch(records)
                elif records:
                    self._launch(records)
                try:
                    if await self._commit_finished():
                        backoff = self.retry_backoff
                except _Abandoned as exc:
                    TRANSACTION_FAILURES.labels(self.service).inc()
                    log.warning(
                        "batch not committed, will retry",
                        extra={"error": repr(exc.__cause__ or exc), "retry_in_s": round(backoff, 2)},
                    )
                    failed = True
            if failed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, self.max_retry_backoff)
            elif len(self._inflight) >= self.depth and not self._inflight[0].task.done():
                # Past the base depth, look again soon: capacity may free up before the head finishes.
                timeout = 0.1 if len(self._inflight) < self.max_depth else None
                await asyncio.wait({self._inflight[0].task}, timeout=timeout)
            await report_lag(self.consumer, self.group_id, self.settings.namespace)
        async with self._lock:
            await self._drain()

    def committed_offset(self, tp: TopicPartition) -> int:
        """The next offset of ``tp`` this instance committed (-1: none yet)."""
        return self._committed.get(tp, -1)

    async def wait_committed(self, tp: TopicPartition, offset: int) -> None:
        """Return once the record at ``offset`` of ``tp`` is committed (by an earlier batch in flight).

        Only a batch behind the one holding that record waits here; if that batch is abandoned, so is
        the waiting one (its task is cancelled), so the wait never outlives the batches it depends on.
        """
        while self._committed.get(tp, -1) <= offset:
            event = self._commit_event
            await event.wait()

    def _may_start(self) -> bool:
        """Whether to fetch and start another batch now."""
        n = len(self._inflight)
        if n < self.depth:
            return True
        # Extra batches only while the records in flight stay within what ``depth`` full batches hold:
        # what a crash makes the next instance re-apply is no larger than without them.
        held = sum(len(b.records) for b in self._inflight)
        return n < self.max_depth and held < self.depth * self.max_batch and self.hungry()

    async def _backlog(self) -> int:
        """Records after the consumer's position up to the last stable offset, over the assignment."""
        total = 0
        for tp in self.consumer.assignment():
            end = self.consumer.last_stable_offset(tp)
            if end is None:
                continue
            try:
                total += max(0, end - await self.consumer.position(tp))
            except Exception:  # noqa: S112 - a partition being revoked right now
                continue
        return total

    async def _refetch(self, records: list[Record]) -> None:
        """Records fetched across a rebalance: consume their partitions again from the committed offsets.

        Whether such a fetch happened before the reassignment (the consumer will fetch the records again)
        or after it (it will not), starting over from what is committed is right in both cases.
        """
        assignment = self.consumer.assignment()
        for tp in {TopicPartition(r.topic, r.partition) for r in records} & assignment:
            committed = await self.consumer.committed(tp)
            if committed is None:
                await self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    def _launch(self, records: list[Record]) -> None:
        assignment = self.consumer.assignment()
        records = [r for r in records if TopicPartition(r.topic, r.partition) in assignment]
        # A part after a cut starts once everything before it is committed (see ``split``).
        after_commit = False
        while records:
            cut = self.split(records)
            part, records = (records[:cut], records[cut:]) if cut else (records, [])
            self._start(part, after_commit=after_commit)
            if cut:
                RENAMES_HELD.inc()
            after_commit = True

    def _start(self, records: list[Record], *, after_commit: bool) -> None:
        gate = self._gate if self._gate is not None and not self._gate.done() else None
        work: Coroutine[Any, Any, list[Output]]
        if after_commit:
            entered = asyncio.get_running_loop().create_future()
            work = self._handle_after(list(self._inflight), records, entered)
            self._gate = entered
        elif gate is not None:
            work = self._handle_behind(gate, records)
        else:
            work = self._handle_isolating(records)
        task = asyncio.create_task(work, name=f"{self.service}-batch")
        self._inflight.append(_Batch(records, task))

    async def _handle_after(
        self, earlier: list[_Batch], records: list[Record], entered: asyncio.Future[None]
    ) -> list[Output]:
        """Handle ``records`` once every batch in ``earlier`` is committed (a cut made by ``split``).

        ``entered`` completes when the handler has been called: batches launched meanwhile wait for it,
        so that the handler still sees batches in consumption order (it chains each customer's commands
        behind those of earlier batches when it is called).
        """
        try:
            while any(batch in self._inflight for batch in earlier):
                event = self._commit_event
                await event.wait()
            entered.set_result(None)
            return await self._handle_isolating(records)
        finally:
            if not entered.done():
                entered.cancel()

    async def _handle_behind(self, gate: asyncio.Future[None], records: list[Record]) -> list[Output]:
        """Handle ``records`` once the waiting batch before them has been handed to the handler."""
        await asyncio.wait({gate})
        if gate.cancelled():
            raise Retryable("an earlier batch was abandoned before it started")
        return await self._handle_isolating(records)

    async def _commit_finished(self) -> int:
        """Commit, in order, every batch at the head of the pipeline whose handler has finished."""
        committed = 0
        while self._inflight and self._inflight[0].task.done():
            await self._commit_head()
            committed += 1
        return committed

    async def _drain(self) -> None:
        """Finish and commit every batch in flight (before partitions move, or on stop)."""
        try:
            while self._inflight:
                await asyncio.wait({self._inflight[0].task})
                await self._commit_head()
        except _Abandoned as exc:
            TRANSACTION_FAILURES.labels(self.service).inc()
            log.warning("batch not committed while draining", extra={"error": str(exc.__cause__ or exc)})

    async def _commit_head(self) -> None:
        batch = self._inflight[0]
        try:
            if batch.task.cancelled():
                raise Retryable("the batch was cancelled")
            await self._commit(batch, batch.task.result())
        except ProducerFenced:
            log.error("producer fenced: another instance with this id took over; stopping")
            raise
        except (Retryable, KafkaError) as exc:
            await self._abandon(list(self._inflight))
            raise _Abandoned(type(exc).__name__) from exc
        self._inflight.popleft()
        # Wakes ``wait_committed`` and batches cut by ``split``, now that the batch is out of flight.
        self._commit_event.set()
        self._commit_event = asyncio.Event()

    async def _abandon(self, batches: list[_Batch]) -> None:
        """Cancel ``batches`` and rewind the consumer to their first offsets."""
        for batch in batches:
            batch.task.cancel()
        for batch in batches:
            with contextlib.suppress(BaseException):
                await batch.task
        first: dict[TopicPartition, int] = {}
        for batch in batches:
            for tp, offset in batch.first_offsets().items():
                first[tp] = min(offset, first.get(tp, offset))
        assignment = self.consumer.assignment()
        for tp, offset in first.items():
            if tp in assignment:
                self.consumer.seek(tp, offset)
        for batch in batches:
            with contextlib.suppress(ValueError):
                self._inflight.remove(batch)

    async def _handle_isolating(self, records: list[Record]) -> list[Output]:
        """The handler's outputs; a handler bug is isolated to the records that trigger it."""
        try:
            return list(await self.handler(records))
        except (Retryable, KafkaError):
            raise
        except Exception as exc:
            if len(records) == 1:
                return [self._dead_letter(records[0], exc)]
            log.exception("batch handler failed; isolating the failing records")
        outputs: list[Output] = []
        for rec in records:
            try:
                outputs.extend(await self.handler([rec]))
            except (Retryable, KafkaError):
                raise
            except Exception as exc:
                outputs.append(self._dead_letter(rec, exc))
        return outputs

    def _dead_letter(self, rec: Record, exc: Exception) -> Output:
        log.error(
            "record dead-lettered after a processing error",
            exc_info=exc,
            extra={"topic": rec.topic, "partition": rec.partition, "offset": rec.offset},
        )
        reason = exc.reason if isinstance(exc, DecodeError) else "processing_error"
        DEAD_LETTERS.labels(self.service, rec.topic.removeprefix(self.settings.namespace), reason).inc()
        return dead_letter(
            rec,
            stage=self.service,
            reason=reason,
            message=f"{type(exc).__name__}: {exc}",
            group=self.group_id,
            exception=exc,
        )

    async def _commit(self, batch: _Batch, outputs: list[Output]) -> None:
        offsets = batch.next_offsets()
        async with self.producer.transaction():
            futures = await send_outputs(self.producer, self.settings, outputs)
            await self.producer.send_offsets_to_transaction(offsets, self.group_id)
        if futures:
            await settle(futures)
        for topic, count in Counter(r.topic for r in batch.records).items():
            RECORDS_CONSUMED.labels(self.service, topic.removeprefix(self.settings.namespace)).inc(count)
        for topic, count in Counter(o.topic for o in outputs).items():
            RECORDS_PRODUCED.labels(self.service, topic).inc(count)
        self.batches += 1
        BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - batch.started)
        for tp, offset in offsets.items():
            self._committed[tp] = max(offset, self._committed.get(tp, -1))
