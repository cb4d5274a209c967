"""The poller's Kafka side: rebuild state from the compacted topics, and publish in transactions.

State lives in Kafka so a poller can restart on another host: the snapshot topic (last seen hash per
customer, tombstone on delete) and the checkpoint topic (one record per connection). Both are read with
``read_committed``, so an aborted or still-open transaction of a crashed poller never becomes state.

The snapshot is folded record by record into 16-byte digests instead of going through
``shared.kafka.read_table``, which keeps every value's JSON bytes: at a million customers that is the
difference between about 160 MB and half a gigabyte at start-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Sequence

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from services.poller.change_detection import KnownHashes
from shared.codec import DecodeError, decode_as
from shared.events import PollCheckpoint
from shared.kafka import Output, make_consumer, read_table, send_outputs, settle
from shared.metrics import RECORDS_PRODUCED
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_SNAPSHOT, POLL_CHECKPOINT

__all__ = ["KafkaCommitter", "load_checkpoints", "load_snapshots"]

log = logging.getLogger(__name__)


def _digest(value: bytes) -> bytes:
    row_hash = orjson.loads(value)["row_hash"]
    digest = bytes.fromhex(row_hash)
    if len(digest) != 16:
        raise ValueError("row_hash is not a 16-byte digest")
    return digest


async def load_snapshots(
    settings: KafkaSettings, connection_ids: Iterable[str], client_id: str = "mlc-poller-state"
) -> dict[str, KnownHashes]:
    """The last seen digest of every customer of the given connections (other connections are skipped)."""
    known: dict[str, KnownHashes] = {c: KnownHashes() for c in connection_ids}
    unreadable = 0
    consumer = make_consumer(settings, client_id, None, max_poll_records=10_000)
    await consumer.start()
    try:
        topic = settings.topic(CUSTOMER_SNAPSHOT.name)
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if tps:
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            pending = {tp for tp in tps if end[tp] > 0}
            while pending:
                batches = await consumer.getmany(*pending, timeout_ms=1000)
                for records in batches.values():
                    for rec in records:
                        key = rec.key
                        if key is None:
                            continue
                        connection, sep, customer = key.partition(b":")
                        table = known.get(connection.decode("utf-8", "replace")) if sep else None
                        if table is None:
                            continue
                        code = customer.decode("utf-8", "replace")
                        if rec.value is None:
                            table.discard(code)
                            continue
                        try:
                            table.set(code, _digest(rec.value))
                        except (ValueError, KeyError, TypeError):
                            unreadable += 1
                            table.discard(code)
                for tp in list(pending):
                    # read_committed positions stop short of end offsets behind transaction markers.
                    if await consumer.position(tp) >= end[tp]:
                        pending.discard(tp)
                await asyncio.sleep(0)
    finally:
        await consumer.stop()
    if unreadable:
        log.warning(
            "snapshot records without a usable row_hash were ignored (those customers will be "
            "re-published on the next run)",
            extra={"count": unreadable},
        )
    return known


async def load_checkpoints(
    settings: KafkaSettings, connection_ids: Iterable[str]
) -> dict[str, PollCheckpoint]:
    wanted = set(connection_ids)
    table = await read_table(settings, POLL_CHECKPOINT.name, client_id="mlc-poller-checkpoints")
    checkpoints: dict[str, PollCheckpoint] = {}
    for key, value in table.items():
        connection = key.decode("utf-8", "replace")
        if connection not in wanted:
            continue
        try:
            checkpoints[connection] = decode_as(value, PollCheckpoint)
        except DecodeError as exc:
            log.warning(
                "unreadable checkpoint ignored; the connection starts with a full scan",
                extra={"connection": connection, "error": str(exc)},
            )
    return checkpoints


class KafkaCommitter:
    """Publishes a list of outputs as one transaction of the poller's transactional producer.

    Connections share the producer (one transactional id per process), so their transactions take
    turns; each is one page, which keeps it far inside the transaction timeout.
    """

    def __init__(self, producer: AIOKafkaProducer, settings: KafkaSettings) -> None:
        self.producer = producer
        self.settings = settings
        self._lock = asyncio.Lock()

    async def commit(self, outputs: Sequence[Output]) -> None:
        if not outputs:
            return
        async with self._lock:
            async with self.producer.transaction():
                futures = await send_outputs(self.producer, self.settings, outputs)
            await settle(futures)
        for topic, count in Counter(o.topic for o in outputs).items():
            RECORDS_PRODUCED.labels("poller", topic).inc(count)
