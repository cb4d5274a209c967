"""The mapper's records as contract events on the wire (JSON bytes, ``shared.events`` schema).

The per-record path builds three events per new customer; constructing validated pydantic events for
them costs several times the mapping itself, so they are encoded here straight from the mapper's own
records with orjson. The JSON is exactly what ``Event.model_dump_json`` would produce (same fields, same
formats); ``tests/mapper/test_wire.py`` decodes it with the strict codec and compares it field by field
with the pydantic models, so a contract change that is not made here fails the tests.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from services.mapper.records import AudienceMemory, Claim, Command, CustomerMemory, Rejection

__all__ = ["Envelope", "Stamp", "encode_command", "encode_memory", "encode_ownership", "encode_rejection"]

_random = random.Random()  # seeded from os.urandom: event ids need uniqueness, not secrecy


_VERSION_MASK = ~(0xF000 << 64 | 0xC000 << 48)
_VERSION_BITS = 0x4000 << 64 | 0x8000 << 48


def _event_id() -> str:
    """A random (version 4) UUID in its canonical text form, without building a ``uuid.UUID``."""
    h = f"{_random.getrandbits(128) & _VERSION_MASK | _VERSION_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class Stamp:
    """The time every event of one batch is stamped with (``occurred_at``), formatted once."""

    occurred_at: str

    @classmethod
    def now(cls) -> Stamp:
        return cls(datetime.now(UTC).isoformat().replace("+00:00", "Z"))


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who and why: the connection and customer, and the event that caused these outputs."""

    connection_id: str
    customer: str
    causation_id: uuid.UUID | None
    correlation_id: uuid.UUID
    #: ``occurred_at`` of the change behind these outputs (ISO text), carried onto commands.
    origin_at: str | None = None

    def fields(self, event_type: str, stamp: Stamp) -> dict[str, object]:
        return {
            "event_id": _event_id(),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": stamp.occurred_at,
            "connection_id": self.connection_id,
            "causation_id": self.causation_id,
            "correlation_id": self.correlation_id,
        }

    @property
    def key(self) -> bytes:
        return f"{self.connection_id}:{self.customer}".encode()


def encode_command(env: Envelope, stamp: Stamp, cmd: Command) -> bytes:
    data = env.fields("MailchimpMemberUpsert", stamp)
    data.update(
        customer=env.customer,
        audience_id=cmd.audience_id,
        list_id=cmd.list_id,
        email_address=cmd.email_address,
        subscriber_hash=cmd.subscriber_hash,
        previous_email=cmd.previous_email,
        status_if_new=cmd.status_if_new,
        action=cmd.action,
        merge_fields=cmd.merge_fields,
        tags_add=cmd.tags_add,
        tags_remove=cmd.tags_remove,
        notes=cmd.notes,
        replay_of=None,
        change_occurred_at=env.origin_at,
    )
    return orjson.dumps(data)


def encode_rejection(env: Envelope, stamp: Stamp, rejection: Rejection) -> bytes:
    data = env.fields("CustomerRejected", stamp)
    data.update(
        customer=rejection.customer or env.customer,
        audience_id=rejection.audience_id,
        reason=rejection.reason,
        field=rejection.field,
        value=rejection.value,
        owner=rejection.owner,
        detail=rejection.detail,
    )
    return orjson.dumps(data)


def _audience(st: AudienceMemory) -> dict[str, object]:
    return {
        "email_address": st.email_address,
        "subscriber_hash": st.subscriber_hash,
        "mailchimp_status": st.mailchimp_status,
        "archived": st.archived,
        "terminal": st.terminal,
        "tags": st.tags,
    }


def encode_memory(env: Envelope, stamp: Stamp, memory: CustomerMemory) -> bytes:
    data = env.fields("MemberState", stamp)
    data.update(customer=env.customer, audiences={aid: _audience(st) for aid, st in memory.items()})
    return orjson.dumps(data)


def encode_ownership(env: Envelope, stamp: Stamp, claim: Claim) -> bytes:
    data = env.fields("EmailOwnership", stamp)
    data.update(
        audience_id=claim.audience_id,
        subscriber_hash=claim.subscriber_hash,
        customer=env.customer,
        claimed_at=stamp.occurred_at,
    )
    return orjson.dumps(data)
