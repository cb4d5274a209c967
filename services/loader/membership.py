"""How many loader workers share the API keys right now: the consumer group, as Kafka describes it.

Only members that own partitions count: an idle member (more workers than partitions) never calls
Mailchimp. While the group is rebalancing, assignments are not settled yet, so every member counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

__all__ = ["active_members", "describe_group_size", "lower_bound"]

log = logging.getLogger(__name__)


def _assigned_partitions(raw: bytes) -> int:
    if not raw:
        return 0
    try:
        assignment = ConsumerProtocolMemberAssignment.decode(raw)
    except Exception:  # an assignment we cannot read still belongs to a working member
        return 1
    return sum(len(partitions) for _, partitions in assignment.assignment)


def active_members(state: str, members: Sequence[Sequence[Any]]) -> int:
    """Members that may call Mailchimp: those owning partitions in a stable group, else all of them."""
    if state != "Stable":
        return len(members)
    return sum(1 for member in members if _assigned_partitions(bytes(member[4] or b"")) > 0)


def lower_bound(total_partitions: int, assigned: int) -> int:
    """At least this many workers exist when this one owns ``assigned`` of ``total_partitions``
    (Kafka's assignors balance partitions across members)."""
    if total_partitions <= 0 or assigned <= 0:
        return 1
    return max(1, math.ceil(total_partitions / assigned))


async def describe_group_size(admin: AIOKafkaAdminClient, group_id: str) -> int | None:
    """The group's active member count, or None when Kafka cannot tell right now."""
    try:
        responses = await admin.describe_consumer_groups([group_id])
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("cannot describe the loader's consumer group", extra={"error": error})
        return None
    for response in responses:
        for group in response.groups:
            error_code, name, state, _, _, members = group[:6]
            if name == group_id and error_code == 0:
                return active_members(state, members)
    return None
