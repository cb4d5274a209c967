"""Replay against the real broker: re-emitting failed commands, and resetting consumer groups."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from services.audit.offsets import GroupActiveError, group_members, reset_offsets
from services.audit.replay import replay_failed
from services.audit.store import AuditStore
from shared.events import Event, MailchimpMemberUpsert
from shared.kafka import make_admin, make_consumer, make_producer
from shared.settings import KafkaSettings
from shared.topics import MEMBER_UPSERT
from tests.audit.factories import Flow, Records
from tests.audit.support import eventually
from tests.helpers import REPO, read_events


@pytest.fixture
def failed_store(tmp_path: Path) -> Iterator[tuple[AuditStore, dict[str, MailchimpMemberUpsert]]]:
    """C0-C3 failed (C0, C1 invalid_resource; C2, C3 compliance), C4 synced, C5 rejected."""
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    flow, recs = Flow(), Records()
    commands: dict[str, MailchimpMemberUpsert] = {}
    batch: list[Event] = []
    for i in range(5):
        change = flow.change(f"C{i}")
        command = commands[f"C{i}"] = flow.command(change)
        reason = "invalid_resource" if i < 2 else "compliance"
        batch += [change, command, flow.failed(command, reason=reason) if i < 4 else flow.synced(command)]
    rejected = flow.change("C5", email="nope")
    batch += [rejected, flow.rejected(rejected)]
    store.append(recs.many(batch))
    yield store, commands
    store.close()


async def _commands(kafka: KafkaSettings) -> list[MailchimpMemberUpsert]:
    return [e for e in await read_events(kafka, MEMBER_UPSERT.name) if isinstance(e, MailchimpMemberUpsert)]


async def test_a_dry_run_lists_what_would_be_re_emitted_and_produces_nothing(
    kafka: KafkaSettings, failed_store: tuple[AuditStore, dict[str, MailchimpMemberUpsert]]
) -> None:
    store, commands = failed_store
    report = await replay_failed(store, kafka, dry_run=True)
    assert [c.state.customer for c in report.candidates] == ["C0", "C1", "C2", "C3"]
    assert [c.command.event_id for c in report.candidates] == [commands[f"C{i}"].event_id for i in range(4)]
    assert report.produced == [] and report.as_dict()["produced"] == 0
    assert await _commands(kafka) == []


async def test_a_replay_re_emits_the_last_command_under_a_new_identity_linked_to_the_original(
    kafka: KafkaSettings, failed_store: tuple[AuditStore, dict[str, MailchimpMemberUpsert]]
) -> None:
    store, commands = failed_store
    progress: list[tuple[int, int]] = []
    report = await replay_failed(
        store, kafka, reason="invalid_resource", progress=lambda done, total: progress.append((done, total))
    )
    assert progress[-1] == (2, 2)
    produced = await eventually(lambda: _at_least(kafka, 2), timeout=30, message="two replayed commands")
    assert sorted(c.customer for c in produced) == ["C0", "C1"]
    for replayed in produced:
        original = commands[replayed.customer]
        assert replayed.replay_of == original.event_id
        assert replayed.causation_id == original.event_id
        assert replayed.correlation_id == report.replay_id
        assert replayed.event_id != original.event_id and replayed.occurred_at > original.occurred_at
        assert replayed.key() == original.key()
        same = {"event_id", "occurred_at", "replay_of", "causation_id", "correlation_id"}
        assert replayed.model_dump(exclude=same) == original.model_dump(exclude=same)


async def test_a_replay_can_select_by_customer_and_time(
    kafka: KafkaSettings, failed_store: tuple[AuditStore, dict[str, MailchimpMemberUpsert]]
) -> None:
    store, _ = failed_store
    by_customer = await replay_failed(store, kafka, customers=["C3", "C4"], dry_run=True)
    assert [c.state.customer for c in by_customer.candidates] == ["C3"]
    c2_failed_at = next(c.state.updated_at for c in by_customer.candidates)
    recent = await replay_failed(store, kafka, since=c2_failed_at - timedelta(seconds=4), dry_run=True)
    assert [c.state.customer for c in recent.candidates] == ["C2", "C3"]
    older = await replay_failed(store, kafka, until=c2_failed_at - timedelta(seconds=4), dry_run=True)
    assert [c.state.customer for c in older.candidates] == ["C0", "C1"]


async def _at_least(kafka: KafkaSettings, n: int) -> list[MailchimpMemberUpsert] | None:
    found = await _commands(kafka)
    return found if len(found) >= n else None


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_ml_connector_replay_failed_spelling_dry_runs_then_produces(
    kafka: KafkaSettings,
    service_env: dict[str, str],
    failed_store: tuple[AuditStore, dict[str, MailchimpMemberUpsert]],
) -> None:
    store, _ = failed_store
    env = {**service_env, "MLC_AUDIT_DB_URL": str(store.engine.url)}
    dry = _cli(["replay", "--failed", "--reason", "compliance", "--dry-run", "--json"], env)
    assert dry.returncode == 0, dry.stderr
    assert [c["customer"] for c in json.loads(dry.stdout)["commands"]] == ["C2", "C3"]
    assert await _commands(kafka) == []
    real = _cli(["replay", "--failed", "--reason", "compliance", "--json"], env)
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["produced"] == 2
    produced = await eventually(lambda: _at_least(kafka, 2), timeout=30, message="replayed commands")
    assert all(c.replay_of is not None for c in produced)


# --- consumer group resets -------------------------------------------------------------------------


@pytest.fixture
async def live_loader(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaConsumer]:
    """A member of the loader's group, holding its partitions."""
    consumer = make_consumer(kafka, "test-live-loader", kafka.group("loader"), MEMBER_UPSERT.name)
    await consumer.start()

    async def joined() -> bool:
        await consumer.getmany(timeout_ms=200)
        return bool(consumer.assignment())

    await eventually(joined, timeout=60, message="the live loader to join its group")
    yield consumer
    await consumer.stop()


async def _committed(kafka: KafkaSettings, group: str) -> dict[int, int]:
    admin = make_admin(kafka)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in offsets.items()
        if tp.topic == kafka.topic(MEMBER_UPSERT.name)
    }


async def test_reset_refuses_while_the_group_has_a_live_member_and_works_after_it_stops(
    kafka: KafkaSettings, live_loader: AIOKafkaConsumer, service_env: dict[str, str]
) -> None:
    with pytest.raises(GroupActiveError, match="live member"):
        await reset_offsets(kafka, "loader", to_earliest=True)
    refused = _cli(["replay", "reset-offsets", "loader", "--to-latest"], service_env)
    assert refused.returncode == 1 and "live member" in refused.stderr
    preview = await reset_offsets(kafka, "loader", to_latest=True, dry_run=True)
    assert preview.members and not preview.applied
    await live_loader.stop()
    plan = await reset_offsets(kafka, "loader", to_latest=True)
    assert plan.applied and plan.group == kafka.group("loader")
    assert await _committed(kafka, kafka.group("loader")) == {p: 0 for p in range(MEMBER_UPSERT.partitions)}


async def test_reset_waits_for_live_members_to_stop_within_its_deadline(
    kafka: KafkaSettings, live_loader: AIOKafkaConsumer
) -> None:
    assert await group_members(kafka, kafka.group("loader"))
    reset = asyncio.create_task(reset_offsets(kafka, "loader", to_earliest=True, wait=60, poll_interval=0.2))
    await asyncio.sleep(0)
    assert not reset.done()
    await live_loader.stop()
    plan = await asyncio.wait_for(reset, timeout=60)
    assert plan.applied
    with pytest.raises(GroupActiveError, match="after waiting"):
        other = make_consumer(kafka, "test-other", kafka.group("loader"), MEMBER_UPSERT.name)
        await other.start()
        try:
            await eventually(lambda: _has_assignment(other), timeout=60, message="another member")
            await reset_offsets(kafka, "loader", to_earliest=True, wait=1, poll_interval=0.2)
        finally:
            await other.stop()


async def _has_assignment(consumer: AIOKafkaConsumer) -> bool:
    await consumer.getmany(timeout_ms=200)
    return bool(consumer.assignment())


async def test_to_datetime_lands_on_the_first_offset_at_or_after_that_time(kafka: KafkaSettings) -> None:
    # Within the topic's retention and not in the future: the broker refuses or deletes anything else.
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    producer = make_producer(kafka, "test-timestamps")
    await producer.start()
    try:
        for partition in (0, 1, 2):
            for i in range(5):
                stamp = base + timedelta(seconds=i, milliseconds=100 * partition)
                await producer.send_and_wait(
                    kafka.topic(MEMBER_UPSERT.name),
                    b"{}",
                    key=b"k",
                    partition=partition,
                    timestamp_ms=int(stamp.timestamp() * 1000),
                )
    finally:
        await producer.stop()
    # base + 2.150 s: partition 0's record 2 is at 2.000, record 3 at 3.000 -> offset 3; partition 1
    # (2.100, 3.100) -> 3; partition 2's record 2 is at 2.200 -> 2; empty partitions land on their end (0).
    plan = await reset_offsets(kafka, "loader", to_datetime=base + timedelta(seconds=2, milliseconds=150))
    expected = {0: 3, 1: 3, 2: 2, 3: 0, 4: 0, 5: 0}
    assert {p.partition: p.target for p in plan.partitions} == expected
    assert await _committed(kafka, kafka.group("loader")) == expected
    later = await reset_offsets(kafka, "loader", to_datetime=base + timedelta(minutes=30))
    assert {p.partition: p.target for p in later.partitions} == {0: 5, 1: 5, 2: 5, 3: 0, 4: 0, 5: 0}
    clamped = await reset_offsets(kafka, "loader", to_offset=4)
    assert {p.partition: p.target for p in clamped.partitions} == {0: 4, 1: 4, 2: 4, 3: 0, 4: 0, 5: 0}
    assert {p.partition: p.current for p in clamped.partitions}[0] == 5


def test_the_cli_rejects_two_targets() -> None:
    result = _cli(["replay", "reset-offsets", "loader", "--to-earliest", "--to-latest"], dict(os.environ))
    assert result.returncode == 2 and "exactly one" in result.stderr
