"""The topic registry: every topic's name, key, value types, partitions, cleanup and retention, once.

``docs/topics.md`` documents this registry and a test fails when the two disagree. Per-customer topics
share one partition count and one key (``connection_id:customer``) so they stay co-partitioned: a
customer's change, command, result and state always land on the same partition number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shared.events import (
    CustomerChanged,
    CustomerRejected,
    CustomerSnapshot,
    EmailOwnership,
    Event,
    MailchimpMemberUpsert,
    MemberState,
    MemberSynced,
    MemberSyncFailed,
    PollCheckpoint,
    PollRunCompleted,
    PollRunFailed,
)

__all__ = [
    "ALL_TOPICS",
    "CUSTOMER_CHANGED",
    "CUSTOMER_PARTITIONS",
    "CUSTOMER_REJECTED",
    "CUSTOMER_SNAPSHOT",
    "DEAD_LETTER",
    "EMAIL_OWNERSHIP",
    "MEMBER_RESULT",
    "MEMBER_STATE",
    "MEMBER_UPSERT",
    "POLL_CHECKPOINT",
    "POLL_RUN",
    "TopicSpec",
    "by_name",
]

DAY_MS = 24 * 60 * 60 * 1000
CUSTOMER_PARTITIONS = 6
"""Partitions of every per-customer topic: the ceiling on workers per service. Raise it for all of
them together (co-partitioning), before the first deployment if possible."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    name: str
    key: str
    value_types: tuple[type[Event], ...]
    partitions: int
    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int | None
    producers: str
    consumers: str
    description: str
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        """Topic-level configs to create it with (and to verify)."""
        cfg: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        cfg.update(self.extra_config)
        return cfg

    @property
    def value_type_names(self) -> tuple[str, ...]:
        return tuple(t.__name__ for t in self.value_types)


_COMPACT = {"min.cleanable.dirty.ratio": "0.1", "segment.ms": str(DAY_MS)}

CUSTOMER_CHANGED = TopicSpec(
    name="syspro.customer.changed.v1",
    key="connection_id:customer",
    value_types=(CustomerChanged,),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=14 * DAY_MS,
    producers="poller",
    consumers="mapper, audit",
    description="A customer was created, updated or deleted in SYSPRO (full after-image).",
)
CUSTOMER_SNAPSHOT = TopicSpec(
    name="syspro.customer.snapshot.v1",
    key="connection_id:customer",
    value_types=(CustomerSnapshot,),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="compact",
    retention_ms=None,
    producers="poller",
    consumers="poller",
    description="The poller's last seen row hash per customer; a tombstone when the customer is deleted.",
    extra_config=_COMPACT,
)
POLL_CHECKPOINT = TopicSpec(
    name="syspro.poll.checkpoint.v1",
    key="connection_id",
    value_types=(PollCheckpoint,),
    partitions=1,
    cleanup_policy="compact",
    retention_ms=None,
    producers="poller",
    consumers="poller",
    description="Where each connection's poller stands (cursor, last completed run).",
    extra_config=_COMPACT,
)
POLL_RUN = TopicSpec(
    name="syspro.poll.run.v1",
    key="connection_id",
    value_types=(PollRunCompleted, PollRunFailed),
    partitions=1,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    producers="poller",
    consumers="audit",
    description="One record per poll run: its counts, or why it failed.",
)
MEMBER_UPSERT = TopicSpec(
    name="mailchimp.member.upsert.v1",
    key="connection_id:customer",
    value_types=(MailchimpMemberUpsert,),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=14 * DAY_MS,
    producers="mapper, replay",
    consumers="loader, audit",
    description="Command: make a customer's member in one audience look like this.",
)
MEMBER_RESULT = TopicSpec(
    name="mailchimp.member.result.v1",
    key="connection_id:customer",
    value_types=(MemberSynced, MemberSyncFailed),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=14 * DAY_MS,
    producers="loader",
    consumers="mapper, audit",
    description="The outcome of every command: synced (with what changed) or failed (with the reason).",
)
MEMBER_STATE = TopicSpec(
    name="mailchimp.member.state.v1",
    key="connection_id:customer",
    value_types=(MemberState,),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="compact",
    retention_ms=None,
    producers="mapper",
    consumers="mapper",
    description="Per customer and audience: last synced email, Mailchimp status, terminal flag, tags.",
    extra_config=_COMPACT,
)
EMAIL_OWNERSHIP = TopicSpec(
    name="mailchimp.email.owner.v1",
    key="connection_id:audience_id:subscriber_hash",
    value_types=(EmailOwnership,),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="compact",
    retention_ms=None,
    producers="mapper",
    consumers="mapper",
    description="Which customer owns an email address in an audience; a tombstone frees it.",
    extra_config=_COMPACT,
)
CUSTOMER_REJECTED = TopicSpec(
    name="mlc.customer.rejected.v1",
    key="connection_id:customer",
    value_types=(CustomerRejected,),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    producers="mapper",
    consumers="audit",
    description="A customer that could not become a member, with the reason and the field to fix.",
)
DEAD_LETTER = TopicSpec(
    name="mlc.deadletter.v1",
    key="as the source record",
    value_types=(),
    partitions=CUSTOMER_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    producers="mapper, loader, audit",
    consumers="audit",
    description=(
        "The original bytes of a record that can never be processed, with the reason in "
        "`mlc.error.*` headers."
    ),
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    CUSTOMER_CHANGED,
    CUSTOMER_SNAPSHOT,
    POLL_CHECKPOINT,
    POLL_RUN,
    MEMBER_UPSERT,
    MEMBER_RESULT,
    MEMBER_STATE,
    EMAIL_OWNERSHIP,
    CUSTOMER_REJECTED,
    DEAD_LETTER,
)


def by_name(name: str) -> TopicSpec:
    for spec in ALL_TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(name)
