"""Kafka plumbing shared by the services: clients from settings, the topic registry on a cluster,
dead-letter records, and reading a compacted topic into memory.

The consume-process-produce loop is in ``shared.processor``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord

from shared.metrics import CONSUMER_LAG
from shared.settings import KafkaSettings
from shared.topics import ALL_TOPICS, DEAD_LETTER, TopicSpec

__all__ = [
    "DLQ_HEADER_PREFIX",
    "Output",
    "TopicReport",
    "client_options",
    "dead_letter",
    "ensure_topics",
    "make_admin",
    "make_consumer",
    "make_producer",
    "read_table",
    "report_lag",
    "send_outputs",
    "settle",
]

log = logging.getLogger(__name__)

DLQ_HEADER_PREFIX = "mlc.error."


@dataclass(frozen=True)
class Output:
    """A record to produce: ``topic`` is the registry name (the namespace is added when sent)."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition the Java client and aiokafka's default partitioner pick for ``key``."""
    if key is None:
        return random.randrange(partitions)
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


async def send_outputs(
    producer: AIOKafkaProducer, settings: KafkaSettings, outputs: Iterable[Output]
) -> list[asyncio.Future[Any]]:
    """Queue ``outputs`` with ``producer`` (inside its current transaction, if any); one future each.

    The partition is the default partitioner's (murmur2 of the key), computed once per topic and key:
    a customer's outputs share their key, and per-record partitioning was a visible share of every
    producing service's CPU. Record batches are left to the producer.
    """
    sizes: dict[str, int] = {}
    # By partition count, not topic: a customer's outputs on co-partitioned topics hash once.
    placed: dict[tuple[int, bytes], int] = {}
    futures: list[asyncio.Future[Any]] = []
    for o in outputs:
        topic = settings.topic(o.topic)
        size = sizes.get(topic)
        if size is None:
            size = sizes[topic] = len(await producer.partitions_for(topic))
        if o.key is None:
            partition = partition_for(None, size)
        else:
            partition = placed.get((size, o.key), -1)
            if partition < 0:
                partition = placed[(size, o.key)] = partition_for(o.key, size)
        futures.append(
            await producer.send(topic, o.value, key=o.key, partition=partition, headers=list(o.headers))
        )
    return futures


async def settle(futures: Iterable[asyncio.Future[Any]]) -> None:
    """Raise the first delivery error among ``futures`` (most are already done after a commit).

    Cheaper than ``asyncio.gather`` over thousands of futures, which wraps and watches every one.
    """
    for future in futures:
        if future.done():
            future.result()
        else:
            await future


def client_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options common to every aiokafka client, from ``KAFKA_*`` settings."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
        if settings.ssl_certfile:
            context.load_cert_chain(
                str(settings.ssl_certfile), str(settings.ssl_keyfile) if settings.ssl_keyfile else None
            )
        context.check_hostname = settings.ssl_check_hostname
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


def make_producer(
    settings: KafkaSettings, client_id: str, transactional_id: str | None = None
) -> AIOKafkaProducer:
    """An idempotent producer (transactional when ``transactional_id`` is given)."""
    extra: dict[str, Any] = {}
    if transactional_id is not None:
        extra["transactional_id"] = settings.namespace + transactional_id
        extra["transaction_timeout_ms"] = settings.transaction_timeout_ms
    return AIOKafkaProducer(
        **client_options(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
        **extra,
    )


def make_consumer(
    settings: KafkaSettings,
    client_id: str,
    group_id: str | None,
    *topics: str,
    max_poll_records: int = 1000,
    **extra: Any,
) -> AIOKafkaConsumer:
    """A consumer that only sees committed transactions and never commits on its own."""
    # Range assignment gives a member the same partition numbers of every topic it reads, which keeps
    # co-partitioned topics (changes and results in the mapper) together; round-robin would not.
    extra.setdefault("partition_assignment_strategy", (RangePartitionAssignor,))
    return AIOKafkaConsumer(
        *(settings.topic(t) for t in topics),
        **client_options(settings),
        client_id=client_id,
        group_id=group_id,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_poll_records,
        **extra,
    )


def make_admin(settings: KafkaSettings, client_id: str = "mlc-admin") -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**client_options(settings), client_id=client_id)


@dataclass(frozen=True)
class TopicReport:
    name: str
    status: str  # "created" | "ok" | "mismatch"
    detail: str = ""


async def _describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    described: dict[str, tuple[int, dict[str, str]]] = {}
    for topic in await admin.describe_topics(names):
        if topic.get("error_code", 0) == 0:
            described[topic["topic"]] = (len(topic["partitions"]), {})
    if described:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in described]
        for response in await admin.describe_configs(resources):
            for resource in response.resources:
                _, _, _, name, entries = resource[:5]
                if name in described:
                    described[name] = (described[name][0], {e[0]: e[1] for e in entries})
    return described


async def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec] = ALL_TOPICS, replication_factor: int | None = None
) -> list[TopicReport]:
    """Create missing topics and verify existing ones against the registry. Idempotent.

    An existing topic with other partitions or another cleanup policy is reported as a mismatch and
    left alone: changing either on a live topic is an operator's decision.
    """
    specs = list(specs)
    replication_factor = replication_factor or settings.replication_factor
    admin = make_admin(settings)
    await admin.start()
    try:
        names = {settings.topic(s.name): s for s in specs}
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, spec.partitions, replication_factor, topic_configs=spec.config())
            for name, spec in names.items()
            if name not in existing
        ]
        reports: list[TopicReport] = []
        if missing:
            response = await admin.create_topics(missing, timeout_ms=settings.request_timeout_ms)
            for name, code, *_ in response.topic_errors:
                # 36 = TOPIC_ALREADY_EXISTS: another process created it meanwhile.
                if code not in (0, 36):
                    raise RuntimeError(f"cannot create topic {name}: Kafka error code {code}")
        created = {t.name for t in missing}
        described = await _describe(admin, list(names))
        for name, spec in names.items():
            if name in created:
                reports.append(TopicReport(name, "created"))
                continue
            partitions, config = described.get(name, (0, {}))
            problems = []
            if partitions != spec.partitions:
                problems.append(f"partitions {partitions} (registry: {spec.partitions})")
            if config.get("cleanup.policy") != spec.cleanup_policy:
                problems.append(
                    f"cleanup.policy {config.get('cleanup.policy')} (registry: {spec.cleanup_policy})"
                )
            reports.append(TopicReport(name, "mismatch" if problems else "ok", "; ".join(problems)))
        return reports
    finally:
        await admin.close()


def dead_letter(
    record: ConsumerRecord[bytes, bytes],
    *,
    stage: str,
    reason: str,
    message: str,
    group: str,
    exception: BaseException | None = None,
) -> Output:
    """The dead-letter record for a consumed record that can never be processed.

    The original key and bytes are kept unchanged; why and where are in ``mlc.error.*`` headers, in
    the spirit of Kafka Connect's ``__connect.errors.*``.
    """
    headers = [
        ("topic", record.topic.encode()),
        ("partition", str(record.partition).encode()),
        ("offset", str(record.offset).encode()),
        ("group", group.encode()),
        ("stage", stage.encode()),
        ("reason", reason.encode()),
        ("message", message[:2000].encode()),
    ]
    if exception is not None:
        headers.append(("exception.class", type(exception).__name__.encode()))
    return Output(
        topic=DEAD_LETTER.name,
        key=record.key,
        value=record.value,
        headers=tuple((DLQ_HEADER_PREFIX + k, v) for k, v in headers),
    )


async def read_table(
    settings: KafkaSettings,
    topic: str,
    partitions: Iterable[int] | None = None,
    client_id: str = "mlc-table-reader",
) -> dict[bytes, bytes]:
    """Read a compacted topic from the beginning to its current end: the latest value per key.

    Tombstones remove keys. Only committed records are read, so a crashed transaction's writes never
    become state.
    """
    consumer = make_consumer(settings, client_id, None, max_poll_records=5000)
    await consumer.start()
    try:
        full = settings.topic(topic)
        available = consumer.partitions_for_topic(full)
        if available is None:
            await consumer._client.force_metadata_update()
            available = consumer.partitions_for_topic(full) or set()
        wanted = sorted(available if partitions is None else set(partitions) & available)
        tps = [TopicPartition(full, p) for p in wanted]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        table: dict[bytes, bytes] = {}
        pending = {tp for tp in tps if end[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for records in batches.values():
                for rec in records:
                    if rec.key is None:
                        continue
                    if rec.value is None:
                        table.pop(rec.key, None)
                    else:
                        table[rec.key] = rec.value
            for tp in list(pending):
                # With read_committed the position can stop short of end offsets that point past
                # transaction markers, so compare positions, not the last record's offset.
                if await consumer.position(tp) >= end[tp]:
                    pending.discard(tp)
            await asyncio.sleep(0)
        return table
    finally:
        await consumer.stop()


async def report_lag(consumer: AIOKafkaConsumer, group_id: str, namespace: str) -> None:
    """Set ``mlc_consumer_lag_records`` for every assigned partition.

    Lag is the consumer's position against the last stable offset. The position, not the last record's
    offset + 1, because each transaction leaves a commit marker after its records: counting from the
    last record would never reach 0 on a fully caught-up consumer.
    """
    for tp in consumer.assignment():
        end = consumer.last_stable_offset(tp)
        if end is None:
            end = consumer.highwater(tp)
        if end is None:
            continue
        try:
            position = await consumer.position(tp)
        except Exception:  # noqa: S112 - a partition being revoked right now; the next round reports it
            continue
        CONSUMER_LAG.labels(group_id, tp.topic.removeprefix(namespace), str(tp.partition)).set(
            max(0, end - position)
        )
