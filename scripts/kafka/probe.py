"""Readiness probe for kafka-local.sh: proves that a real Kafka client can use the broker.

The broker's "Kafka Server started" line means it has unfenced itself and opened its listeners, but what
tests and services need is a client that can create a topic, produce and fetch, and find the group and
transaction coordinators. ``roundtrip`` does exactly that on a throw-away topic (then deletes it, so test
code never sees it); ``metadata`` is a read-only check for clusters this script does not own, where
creating topics would be rude.

Run with the project's venv python: aiokafka is a project dependency, so no extra tool is needed.
Exit status 0 when the check passed before the deadline, 1 otherwise (last error on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError

# A single attempt must leave time for retries within the caller's deadline.
_ATTEMPT_TIMEOUT_S = 10.0
_RETRY_PAUSE_S = 0.5


def _raise_on_topic_errors(response: object, action: str) -> None:
    """CreateTopics/DeleteTopics report per-topic failures in the response body, not as exceptions."""
    errors = getattr(response, "topic_errors", None) or getattr(response, "topic_error_codes", None) or []
    for entry in errors:
        name, code = entry[0], entry[1]
        if code != 0:
            message = entry[2] if len(entry) > 2 else ""
            raise RuntimeError(f"{action} {name!r} failed with error code {code} {message or ''}".rstrip())


async def _check_metadata(bootstrap: str) -> str:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(_ATTEMPT_TIMEOUT_S * 1000)
    )
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    brokers = cluster.get("brokers") or []
    if not brokers:
        raise RuntimeError("metadata response lists no brokers")
    return f"metadata ok, {len(brokers)} broker(s), cluster id {cluster.get('cluster_id')}"


async def _warm_coordinators(bootstrap: str) -> None:
    """Have the broker create __consumer_offsets and __transaction_state now.

    The first FindCoordinator for a group or a transactional id makes the broker create the internal topic
    and answer "coordinator not available" meanwhile; doing it here keeps that delay, and aiokafka's
    warnings about it, out of the first test or service that uses a group or a transaction.
    """
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(_ATTEMPT_TIMEOUT_S * 1000))
    await client.bootstrap()
    try:
        for kind in (CoordinationType.GROUP, CoordinationType.TRANSACTION):
            while True:
                try:
                    await client.coordinator_lookup(kind, "mlc-readiness-probe")
                    break
                except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
                    await asyncio.sleep(0.1)
    finally:
        await client.close()


async def _check_roundtrip(bootstrap: str) -> str:
    topic = f"mlc-readiness-probe-{uuid.uuid4().hex[:12]}"
    payload = uuid.uuid4().bytes
    timeout_ms = int(_ATTEMPT_TIMEOUT_S * 1000)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        created = await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        _raise_on_topic_errors(created, "creating topic")
        try:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms
            )
            await producer.start()
            try:
                sent = await producer.send_and_wait(topic, payload)
            finally:
                await producer.stop()
            # No group: assigning the partition directly avoids a group join the probe does not need.
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=timeout_ms
            )
            await consumer.start()
            try:
                partition = TopicPartition(topic, sent.partition)
                consumer.assign([partition])
                consumer.seek(partition, sent.offset)
                record = await asyncio.wait_for(consumer.getone(partition), _ATTEMPT_TIMEOUT_S)
            finally:
                await consumer.stop()
            if record.value != payload:
                raise RuntimeError("fetched record differs from the one produced")
        finally:
            deleted = await admin.delete_topics([topic])
            _raise_on_topic_errors(deleted, "deleting topic")
    finally:
        await admin.close()
    await _warm_coordinators(bootstrap)
    return f"round-trip ok (create, produce, fetch, delete on {topic}; group and transaction coordinators up)"


async def _probe(bootstrap: str, mode: str, deadline: float) -> int:
    check = _check_roundtrip if mode == "roundtrip" else _check_metadata
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        remaining = deadline - time.monotonic()
        try:
            result = await asyncio.wait_for(check(bootstrap), max(remaining, 0.1))
        except Exception as exc:  # any failure is retried until the deadline; the last one is reported
            last_error = f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc)
            await asyncio.sleep(_RETRY_PAUSE_S)
            continue
        print(f"kafka probe: {bootstrap}: {result}", file=sys.stderr)
        return 0
    print(f"kafka probe: {bootstrap}: not ready: {last_error}", file=sys.stderr)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("bootstrap", help="host:port[,host:port...]")
    parser.add_argument("--mode", choices=("roundtrip", "metadata"), default="roundtrip")
    parser.add_argument("--timeout", type=float, default=30.0, help="overall deadline in seconds")
    args = parser.parse_args()
    # aiokafka logs every refused connection; while the broker boots those are expected noise, and the
    # probe reports the last error itself when the deadline passes.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    return asyncio.run(_probe(args.bootstrap, args.mode, time.monotonic() + args.timeout))


if __name__ == "__main__":
    sys.exit(main())
