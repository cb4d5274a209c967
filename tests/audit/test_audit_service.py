"""The audit service against the real broker: every record stored exactly once, whatever happens."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from aiokafka import TopicPartition
from sqlalchemy import create_engine, func, select, text

from services.audit.app import AUDITED_TOPICS, AuditService
from services.audit.offsets import reset_offsets
from services.audit.schema import events
from services.audit.settings import AuditServiceSettings
from shared.codec import encode
from shared.events import Event
from shared.kafka import make_admin, make_consumer, make_producer
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_CHANGED, DEAD_LETTER
from simulators._server import free_port
from tests.audit.factories import TOPIC_OF, Flow
from tests.audit.support import eventually
from tests.helpers import ServiceProcess, produce_raw, running, wait_for

TOKEN = "test-token-0123456789"


def _customer_events(flow: Flow, start: int, count: int) -> list[Event]:
    out: list[Event] = []
    for i in range(start, start + count):
        change = flow.change(f"C{i:05d}")
        command = flow.command(change)
        out += [change, command, flow.synced(command) if i % 7 else flow.failed(command)]
    return out


async def _produce(settings: KafkaSettings, evts: list[Event]) -> None:
    producer = make_producer(settings, "test-audit-producer")
    await producer.start()
    try:
        futures = [
            await producer.send(settings.topic(TOPIC_OF[e.event_type]), encode(e), key=e.key()) for e in evts
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _rows(db_url: str) -> tuple[int, int]:
    """(rows, distinct positions) in the audit log."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.scalar(select(func.count()).select_from(events)) or 0
            distinct = (
                "SELECT COUNT(*) FROM (SELECT DISTINCT topic, kafka_partition, kafka_offset FROM events) p"
            )
            positions = conn.scalar(text(distinct))
            return int(rows), int(positions or 0)
    except Exception:
        return 0, 0
    finally:
        engine.dispose()


async def _end_total(settings: KafkaSettings) -> int:
    """Records on every audited topic (all produced non-transactionally, so offsets = records)."""
    consumer = make_consumer(settings, "test-end-offsets", None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(settings.topic(t.name), p)
            for t in AUDITED_TOPICS
            for p in consumer.partitions_for_topic(settings.topic(t.name)) or set()
        ]
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


def _audit(service_env: dict[str, str], db_url: str, tmp_path: Path, name: str) -> ServiceProcess:
    env = {
        **service_env,
        "MLC_AUDIT_DB_URL": db_url,
        "MLC_AUDIT_API_TOKEN": TOKEN,
        "MLC_AUDIT_BATCH_SIZE": "100",
        "MLC_INSTANCE_ID": name,
    }
    return ServiceProcess("audit", env, free_port(), tmp_path / f"{name}.log").start()


async def test_killing_restarting_and_resetting_the_audit_leaves_one_row_per_record(
    kafka: KafkaSettings, service_env: dict[str, str], tmp_path: Path
) -> None:
    db_url = f"sqlite:///{tmp_path / 'audit.db'}"
    flow = Flow()
    await _produce(kafka, _customer_events(flow, 0, 300))
    await produce_raw(kafka, CUSTOMER_CHANGED.name, b"{not json", key=b"acme:GARBAGE")
    audit = _audit(service_env, db_url, tmp_path, "audit-1")
    try:
        await audit.wait_ready()
        await wait_for(lambda: _rows(db_url)[0] >= 901, timeout=60, message="first records stored")
        # Kill it while a second stream is still being produced: mid-stream by construction.
        producing = asyncio.create_task(_produce(kafka, _customer_events(flow, 300, 900)))
        await wait_for(lambda: _rows(db_url)[0] > 950, timeout=60, message="second stream being stored")
        audit.kill()
        stored_at_kill = _rows(db_url)[0]
        await producing
    finally:
        if audit.proc and audit.proc.poll() is None:
            audit.kill()
    total = await _end_total(kafka)
    assert stored_at_kill < total

    audit = _audit(service_env, db_url, tmp_path, "audit-2")
    try:
        await audit.wait_ready()
        await wait_for(lambda: _rows(db_url)[0] >= total, timeout=90, message="every record stored")
        async with httpx.AsyncClient(base_url=audit.url, timeout=10) as client:
            assert (await client.get("/status")).status_code == 401
            failed = await client.get(
                "/status",
                params={"status": "failed", "limit": 5},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert failed.status_code == 200 and len(failed.json()["items"]) == 5
            assert (await client.get("/metrics")).status_code == 200
        assert audit.terminate() == 0
    finally:
        if audit.proc and audit.proc.poll() is None:
            audit.kill()
    assert _rows(db_url) == (total, total)

    plan = await reset_offsets(kafka, "audit", to_earliest=True)
    assert plan.applied and all(p.target == 0 for p in plan.partitions)
    audit = _audit(service_env, db_url, tmp_path, "audit-3")
    try:
        await audit.wait_ready()
        await _produce(kafka, _customer_events(flow, 2000, 1))
        await wait_for(
            lambda: _rows(db_url)[0] >= total + 3, timeout=60, message="new records after the reset"
        )
        assert audit.terminate() == 0
    finally:
        if audit.proc and audit.proc.poll() is None:
            audit.kill()
    assert _rows(db_url) == (total + 3, total + 3)


async def test_undecodable_records_and_dead_letters_are_stored_and_offsets_committed_to_kafka(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    flow = Flow()
    change = flow.change("C1")
    command = flow.command(change)
    await _produce(kafka, [change, command])
    await produce_raw(kafka, CUSTOMER_CHANGED.name, b"\xff\xfe", key=b"acme:C2")
    headers = [
        ("mlc.error.reason", b"invalid_payload"),
        ("mlc.error.stage", b"loader"),
        ("mlc.error.topic", kafka.topic(TOPIC_OF["MailchimpMemberUpsert"]).encode()),
    ]
    await produce_raw(kafka, DEAD_LETTER.name, encode(command), key=command.key(), headers=headers)
    settings = AuditServiceSettings(db_url=f"sqlite:///{tmp_path / 'audit.db'}", api_insecure=True)
    service = AuditService(kafka, settings, "in-process")
    async with running(service):
        await wait_for(lambda: _rows(settings.db_url)[0] >= 4, timeout=60, message="four rows")
        assert service.store is not None
        positions = service.store.positions()
        admin = make_admin(kafka)
        await admin.start()
        try:

            async def committed_matches() -> bool:
                offsets = await admin.list_consumer_group_offsets(kafka.group("audit"))
                committed = {
                    (tp.topic.removeprefix(kafka.namespace), tp.partition): m.offset
                    for tp, m in offsets.items()
                }
                return all(committed.get(key) == offset + 1 for key, offset in positions.items())

            await eventually(committed_matches, timeout=30, message="Kafka offsets = stored positions + 1")
        finally:
            await admin.close()
    engine = create_engine(settings.db_url)
    with engine.connect() as conn:
        kinds: dict[str, int] = dict(
            conn.execute(select(events.c.kind, func.count()).group_by(events.c.kind)).all()
        )
        dead = conn.execute(
            select(events.c.reason, events.c.ref_event_id).where(events.c.kind == "dead_letter")
        ).one()
    engine.dispose()
    assert kinds == {"event": 2, "undecodable": 1, "dead_letter": 1}
    assert tuple(dead) == ("invalid_payload", str(command.event_id))
