"""The mapper service against the real broker: renames, duplicates, status policy, terminal members
across a restart, dead letters, and ownership learned from another instance."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka.partitioner import DefaultPartitioner

from services.mapper.app import MapperService
from services.mapper.email_identity import subscriber_hash
from services.mapper.pipeline import WRITER_HEADER
from shared.connections import ConnectionsConfig
from shared.events import (
    CustomerRejected,
    EmailOwnership,
    MailchimpMemberUpsert,
    MemberState,
    MemberSynced,
)
from shared.settings import KafkaSettings
from shared.topics import (
    CUSTOMER_CHANGED,
    CUSTOMER_REJECTED,
    DEAD_LETTER,
    EMAIL_OWNERSHIP,
    MEMBER_RESULT,
    MEMBER_STATE,
    MEMBER_UPSERT,
)
from tests.helpers import ServiceProcess, produce, produce_raw, read_all, read_events, running, wait_for
from tests.mapper.factories import CONNECTION, change, config


def _service(
    kafka: KafkaSettings, cfg: ConnectionsConfig | None = None, instance: str = "m1"
) -> MapperService:
    return MapperService(kafka, cfg or config(), instance)


async def _events(kafka: KafkaSettings, topic: str, kind: type[Any], n: int) -> list[Any]:
    async def enough() -> list[Any] | None:
        events = [e for e in await read_events(kafka, topic, timeout=2) if isinstance(e, kind)]
        return events if len(events) >= n else None

    return await wait_for(enough, timeout=60, interval=0.3, message=f"{n} {kind.__name__} on {topic}")


async def _until(condition: Callable[[], Awaitable[Any]], message: str) -> Any:
    return await wait_for(condition, timeout=60, interval=0.3, message=message)


async def _assigned(service: MapperService) -> None:
    assert service.processor is not None
    await wait_for(service.processor.assigned.is_set, timeout=60, message="partitions assigned")


async def test_an_email_change_becomes_one_rename_carrying_the_old_email(kafka: KafkaSettings) -> None:
    async with running(_service(kafka)) as service:
        await _assigned(service)
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000019", kind="created", Email="old@johnsons.example")]
        )
        await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 1)
        renamed = change("000019", Email="New@Johnsons.example")
        await produce(kafka, CUSTOMER_CHANGED.name, [renamed])
        first, second = await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 2)
    assert first.previous_email is None
    assert (second.email_address, second.previous_email) == ("New@Johnsons.example", "old@johnsons.example")
    assert second.subscriber_hash == subscriber_hash("new@johnsons.example")
    assert second.causation_id == renamed.event_id
    history: dict[bytes, list[bool]] = {}
    for rec in await read_all(kafka, EMAIL_OWNERSHIP.name):  # in order per key
        history.setdefault(rec.key, []).append(rec.value is not None)
    old = f"{CONNECTION}:main:{first.subscriber_hash}".encode()
    new = f"{CONNECTION}:main:{second.subscriber_hash}".encode()
    assert history == {old: [True, False], new: [True]}  # old claimed then freed, new claimed


async def test_a_duplicate_email_yields_one_command_and_one_rejection(kafka: KafkaSettings) -> None:
    async with running(_service(kafka)) as service:
        await _assigned(service)
        # One after the other: across partitions, which of two simultaneous changes comes first is open.
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000001", kind="created", Email="shared@example.com")]
        )
        await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 1)
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000002", kind="created", Email="SHARED@example.com ")]
        )
        [rejected] = await _events(kafka, CUSTOMER_REJECTED.name, CustomerRejected, 1)
    commands = [
        e for e in await read_events(kafka, MEMBER_UPSERT.name) if isinstance(e, MailchimpMemberUpsert)
    ]
    assert [c.customer for c in commands] == ["000001"]
    assert (rejected.customer, rejected.reason, rejected.owner, rejected.field, rejected.value) == (
        "000002",
        "duplicate_email",
        "000001",
        "Email",
        "SHARED@example.com",
    )


async def test_an_on_hold_customer_gets_the_configured_action(kafka: KafkaSettings) -> None:
    cfg = config(
        {"id": "tagged"}, {"id": "archived", "list_id": "L2", "policy": {"inactive_action": "archive"}}
    )
    async with running(_service(kafka, cfg)) as service:
        await _assigned(service)
        await produce(kafka, CUSTOMER_CHANGED.name, [change("000001", kind="created")])
        await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 2)
        await produce(kafka, CUSTOMER_CHANGED.name, [change("000001", CustomerOnHold="Y")])
        commands = await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 4)
    held = {c.audience_id: c for c in commands[2:]}
    assert (held["tagged"].action, held["tagged"].tags_add) == ("upsert", ["on-hold"])
    assert (held["archived"].action, held["archived"].email_address) == (
        "archive",
        "accounts@johnsons.example",
    )


async def test_a_member_unsubscribed_in_mailchimp_is_never_resubscribed_even_after_a_restart(
    kafka: KafkaSettings,
) -> None:
    cfg = config({"policy": {"inactive_action": "archive"}})
    async with running(_service(kafka, cfg)) as service:
        await _assigned(service)
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000001", kind="created", Email="jane@example.com")]
        )
        [command] = await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 1)
        unsubscribed = MemberSynced(
            connection_id=CONNECTION,
            customer="000001",
            audience_id="main",
            list_id="L1",
            email_address="jane@example.com",
            subscriber_hash=command.subscriber_hash,
            outcome="updated",
            mailchimp_status="unsubscribed",
            causation_id=command.event_id,
        )
        await produce(kafka, MEMBER_RESULT.name, [unsubscribed])

        async def terminal() -> bool:
            states = [
                e
                for e in await read_events(kafka, MEMBER_STATE.name, timeout=2)
                if isinstance(e, MemberState)
            ]
            return bool(states) and states[-1].audiences["main"].terminal

        await _until(terminal, "terminal member state")
    async with running(_service(kafka, cfg)) as service:  # a new process: state comes back from Kafka
        await _assigned(service)
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000001", CustomerOnHold="Y", Email="jane@example.com")]
        )
        await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 2)
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000001", CustomerOnHold="N", Email="jane@example.com")]
        )
        [rejected] = await _events(kafka, CUSTOMER_REJECTED.name, CustomerRejected, 1)
    commands = [
        e for e in await read_events(kafka, MEMBER_UPSERT.name) if isinstance(e, MailchimpMemberUpsert)
    ]
    assert [c.action for c in commands] == [
        "upsert",
        "archive",
    ]  # no un-archiving upsert after the unsubscribe
    assert rejected.reason == "excluded_by_policy" and "unsubscribed" in rejected.detail


async def test_a_malformed_event_is_dead_lettered_with_its_reason_and_the_stream_goes_on(
    kafka: KafkaSettings,
) -> None:
    async with running(_service(kafka)) as service:
        await _assigned(service)
        await produce_raw(kafka, CUSTOMER_CHANGED.name, b"{not json", key=b"acme:bad1")
        broken = change("000002").model_dump(mode="json")
        broken["change"] = "renamed"
        await produce_raw(kafka, CUSTOMER_CHANGED.name, orjson.dumps(broken), key=b"acme:000002")
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000003", kind="created", Email="ok@example.com")]
        )
        [command] = await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 1)

        async def dead() -> list[Any] | None:
            records = await read_all(kafka, DEAD_LETTER.name, timeout=2)
            return records if len(records) >= 2 else None

        records = await _until(dead, "two dead letters")
    assert command.customer == "000003"
    headers = [dict(r.headers) for r in records]
    assert sorted(h["mlc.error.reason"] for h in headers) == [b"invalid_payload", b"not_json"]
    assert {h["mlc.error.stage"] for h in headers} == {b"mapper"}
    assert b"{not json" in {r.value for r in records}


async def test_claims_and_releases_by_another_instance_are_followed(kafka: KafkaSettings) -> None:
    elsewhere = EmailOwnership(
        connection_id=CONNECTION,
        audience_id="main",
        subscriber_hash=subscriber_hash("taken@example.com"),
        customer="000777",
    )
    async with running(_service(kafka)) as service:
        await _assigned(service)
        other = [(WRITER_HEADER, uuid.uuid4().hex.encode())]
        await produce_raw(
            kafka, EMAIL_OWNERSHIP.name, elsewhere.model_dump_json().encode(), elsewhere.key(), other
        )
        await wait_for(lambda: service.feed.records_followed >= 1, timeout=30, message="claim followed")
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000001", kind="created", Email="taken@example.com")]
        )
        [rejected] = await _events(kafka, CUSTOMER_REJECTED.name, CustomerRejected, 1)
        assert (rejected.reason, rejected.owner) == ("duplicate_email", "000777")
        await produce_raw(
            kafka, EMAIL_OWNERSHIP.name, None, elsewhere.key(), other
        )  # the other instance frees it
        await wait_for(lambda: service.feed.records_followed >= 2, timeout=30, message="release followed")
        # The waiting customer is woken with the next batch the mapper handles.
        await produce(
            kafka, CUSTOMER_CHANGED.name, [change("000002", kind="created", Email="other@example.com")]
        )
        commands = await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 2)
    assert {c.customer: c.email_address for c in commands} == {
        "000001": "taken@example.com",
        "000002": "other@example.com",
    }


async def test_the_mapper_runs_as_a_process_from_the_connections_file(
    kafka: KafkaSettings, service_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "connections.yaml"
    path.write_text(yaml.safe_dump(config().model_dump(mode="json")))
    env = {**service_env, "MLC_CONNECTIONS_FILE": str(path), "MLC_INSTANCE_ID": "proc1"}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = ServiceProcess("mapper", env, port, tmp_path / "mapper.log").start()
    try:
        ready = await process.wait_ready(timeout=90)
        assert ready["ready"] and len(ready["partitions"]) == 6
        await produce(kafka, CUSTOMER_CHANGED.name, [change("000001", kind="created")])
        [command] = await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 1)
        assert command.customer == "000001"
    finally:
        assert process.proc is not None
        code = process.terminate() if process.proc.poll() is None else process.proc.returncode
    assert code == 0, process.logs()[-3000:]


def _partition(customer: str) -> int:
    key = f"{CONNECTION}:{customer}".encode()
    return int(DefaultPartitioner()(key, list(range(CUSTOMER_CHANGED.partitions)), []))


async def test_two_instances_share_ownership_and_state_moves_with_partitions(kafka: KafkaSettings) -> None:
    first, second = _service(kafka, instance="m1"), _service(kafka, instance="m2")
    async with running(first):
        async with running(second):
            await _until(
                lambda: _async(
                    first.processor is not None
                    and second.processor is not None
                    and bool(first._assigned)
                    and bool(second._assigned)
                    and len(first._assigned) + len(second._assigned) == 6
                    and first._assigned.isdisjoint(second._assigned)
                ),
                "partitions split between two instances",
            )
            on_first = next(f"{n:06d}" for n in range(1, 999) if _partition(f"{n:06d}") in first._assigned)
            on_second = next(f"{n:06d}" for n in range(1, 999) if _partition(f"{n:06d}") in second._assigned)
            await produce(
                kafka, CUSTOMER_CHANGED.name, [change(on_second, kind="created", Email="shared@example.com")]
            )
            await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 1)
            await _until(
                lambda: _async(first.feed.records_followed >= 1), "the first instance follows the claim"
            )
            await produce(
                kafka, CUSTOMER_CHANGED.name, [change(on_first, kind="created", Email="shared@example.com")]
            )
            [rejected] = await _events(kafka, CUSTOMER_REJECTED.name, CustomerRejected, 1)
            assert (rejected.customer, rejected.owner) == (on_first, on_second)
        # The second instance left: its partitions, and their member states, move to the first.
        await _until(lambda: _async(len(first._assigned) == 6), "first instance owns every partition")
        await produce(kafka, CUSTOMER_CHANGED.name, [change(on_second, Email="mine@example.com")])
        commands = await _events(kafka, MEMBER_UPSERT.name, MailchimpMemberUpsert, 3)
    [renamed] = [c for c in commands if c.previous_email is not None]
    [woken] = [c for c in commands if c.customer == on_first]
    assert (renamed.customer, renamed.previous_email) == (on_second, "shared@example.com")
    assert (woken.customer, woken.email_address) == (on_first, "shared@example.com")


async def _async(value: bool) -> bool:
    return value
