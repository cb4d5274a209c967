"""Reset a service's consumer group, as ``kafka-consumer-groups --reset-offsets`` would.

The group is ``KafkaSettings.group(service)`` (``<namespace>mlc-<service>``). Targets per partition:
the earliest or latest offset, an explicit offset (clamped to what the log still holds, as Kafka's tool
does), or a point in time (the first offset whose timestamp is at or after it, via ``offsets_for_times``;
the end of the log when there is none). The new offsets are committed for the group by a consumer that
uses the group id with manual assignment, so it never joins the group.

A group with live members would overwrite the reset with its next commit, so the reset refuses unless
the group is empty, optionally waiting (with a deadline) for its members to stop. A dry run computes
and reports the same plan, live members or not, and commits nothing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition

from shared.kafka import make_admin, make_consumer
from shared.settings import KafkaSettings
from shared.topics import ALL_TOPICS

__all__ = [
    "GroupActiveError",
    "PartitionReset",
    "ResetPlan",
    "group_members",
    "input_topics",
    "reset_offsets",
]


class GroupActiveError(RuntimeError):
    """The group has live members; stop the service first (or pass a wait)."""

    def __init__(self, group: str, members: list[str], waited: float | None = None) -> None:
        waited_text = f" after waiting {waited:.0f} s" if waited else ""
        super().__init__(
            f"consumer group {group} has {len(members)} live member(s){waited_text}: {', '.join(members)}; "
            "stop the service (or pass --wait SECONDS) before resetting its offsets"
        )
        self.group = group
        self.members = members


@dataclass(frozen=True)
class PartitionReset:
    topic: str
    partition: int
    #: The group's committed offset before the reset (None: nothing committed).
    current: int | None
    target: int
    log_start: int
    log_end: int


@dataclass
class ResetPlan:
    service: str
    group: str
    target: str
    dry_run: bool
    applied: bool = False
    members: list[str] = field(default_factory=list)
    partitions: list[PartitionReset] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def input_topics(service: str) -> list[str]:
    """The event topics the registry says ``service`` consumes (compacted state topics are read whole,
    without a group, so they are not part of it)."""
    return [
        spec.name
        for spec in ALL_TOPICS
        if spec.cleanup_policy == "delete" and service in {c.strip() for c in spec.consumers.split(",")}
    ]


async def group_members(settings: KafkaSettings, group: str) -> list[str]:
    """``client_id@host`` of each live member of ``group`` (empty when the group is empty or unknown)."""
    admin = make_admin(settings, "mlc-replay-admin")
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members: list[str] = []
    for response in responses:
        for described in response.to_object()["groups"]:
            if described["group"] == group:
                members += [f"{m['client_id']}@{m['client_host'].lstrip('/')}" for m in described["members"]]
    return members


async def _wait_until_empty(
    settings: KafkaSettings, group: str, wait: float | None, interval: float
) -> list[str]:
    started = time.monotonic()
    members = await group_members(settings, group)
    while members and wait and time.monotonic() - started < wait:
        await asyncio.sleep(min(interval, max(0.0, wait - (time.monotonic() - started))))
        members = await group_members(settings, group)
    if members:
        raise GroupActiveError(group, members, time.monotonic() - started if wait else None)
    return members


def _describe_target(
    to_datetime: datetime | None, to_earliest: bool, to_latest: bool, to_offset: int | None
) -> str:
    chosen = [to_datetime is not None, to_earliest, to_latest, to_offset is not None]
    if sum(chosen) != 1:
        raise ValueError("choose exactly one of to_datetime, to_earliest, to_latest, to_offset")
    if to_datetime is not None:
        if to_datetime.tzinfo is None:
            raise ValueError("to_datetime must be timezone-aware")
        return f"datetime {to_datetime.astimezone(UTC).isoformat()}"
    if to_earliest:
        return "earliest"
    if to_latest:
        return "latest"
    return f"offset {to_offset}"


async def reset_offsets(
    settings: KafkaSettings,
    service: str,
    *,
    to_datetime: datetime | None = None,
    to_earliest: bool = False,
    to_latest: bool = False,
    to_offset: int | None = None,
    topics: list[str] | None = None,
    dry_run: bool = False,
    wait: float | None = None,
    poll_interval: float = 1.0,
) -> ResetPlan:
    """Move ``service``'s group to the target on every partition of its input topics (or ``topics``)."""
    target = _describe_target(to_datetime, to_earliest, to_latest, to_offset)
    group = settings.group(service)
    plan = ResetPlan(service=service, group=group, target=target, dry_run=dry_run)
    if dry_run:
        plan.members = await group_members(settings, group)
    else:
        await _wait_until_empty(settings, group, wait, poll_interval)
    names = topics or input_topics(service)
    if not names:
        raise ValueError(f"no input topics known for service {service!r}; name them with topics=")
    consumer = make_consumer(settings, "mlc-replay-reset", group)
    await consumer.start()
    try:
        tps: list[TopicPartition] = []
        for name in names:
            full = settings.topic(name)
            partitions = consumer.partitions_for_topic(full)
            if partitions is None:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(full)
            if not partitions:
                raise ValueError(f"topic {full} does not exist")
            tps += [TopicPartition(full, p) for p in sorted(partitions)]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        targets: dict[TopicPartition, int] = {}
        if to_datetime is not None:
            stamp = int(to_datetime.timestamp() * 1000)
            found = await consumer.offsets_for_times(dict.fromkeys(tps, stamp))
            targets = {tp: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in tps}
        elif to_earliest:
            targets = dict(starts)
        elif to_latest:
            targets = dict(ends)
        else:
            assert to_offset is not None
            targets = {tp: min(max(to_offset, starts[tp]), ends[tp]) for tp in tps}
        committed = await _committed(settings, group, tps)
        plan.partitions = [
            PartitionReset(
                tp.topic.removeprefix(settings.namespace),
                tp.partition,
                committed.get(tp),
                targets[tp],
                starts[tp],
                ends[tp],
            )
            for tp in tps
        ]
        if not dry_run:
            await consumer.commit(targets)
            plan.applied = True
    finally:
        await consumer.stop()
    return plan


async def _committed(
    settings: KafkaSettings, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    admin = make_admin(settings, "mlc-replay-admin")
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
