"""Events and consumed records for the audit tests: one customer's way through the pipeline."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.audit.projection import ConsumedRecord
from shared.codec import encode
from shared.events import (
    CustomerChanged,
    CustomerRejected,
    Event,
    MailchimpMemberUpsert,
    MemberSynced,
    MemberSyncFailed,
    PollRunCompleted,
)
from shared.topics import CUSTOMER_CHANGED, CUSTOMER_REJECTED, MEMBER_RESULT, MEMBER_UPSERT, POLL_RUN, by_name

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)


def row(customer: str, email: str) -> dict[str, Any]:
    """A plausible ArCustomer after-image (about the size of a real one)."""
    return {
        "Customer": customer,
        "Name": f"Customer {customer} Pty Ltd",
        "Contact": "Jane Smith",
        "Email": email,
        "Telephone": "+27 11 555 0100",
        "SoldToAddr1": "12 Main Road",
        "SoldToAddr2": "Unit 4",
        "SoldToAddr3": "Johannesburg",
        "SoldToAddr4": "Gauteng",
        "SoldToAddr5": "South Africa",
        "SoldPostalCode": "2001",
        "Branch": "10",
        "Area": "JHB",
        "Salesperson": "AB1",
        "CustomerClass": "RT",
        "CreditStatus": "0",
        "CustomerOnHold": "N",
        "Currency": "ZAR",
        "TermsCode": "30",
        "DateLastSale": "2030-04-12",
        "Nationality": "ZAF",
        "TaxStatus": "N",
        "InvoiceCount": 42,
        "CreditLimit": 50000.0,
    }


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


@dataclass
class Flow:
    """Builds a customer's events with consistent causation and correlation ids."""

    connection_id: str = "acme"
    audience_id: str = "retail"
    list_id: str = "a1b2c3d4e5"
    run_id: uuid.UUID = field(default_factory=uuid.uuid4)
    clock: datetime = T0

    def tick(self, seconds: float = 1.0) -> datetime:
        self.clock = self.clock + timedelta(seconds=seconds)
        return self.clock

    def change(self, customer: str, email: str = "", change: str = "created") -> CustomerChanged:
        email = email or f"{customer.lower()}@example.com"
        return CustomerChanged(
            connection_id=self.connection_id,
            customer=customer,
            change=change,  # type: ignore[arg-type]
            row={} if change == "deleted" else row(customer, email),
            row_hash=f"h-{customer}-{email}",
            run_id=self.run_id,
            strategy="snapshot",
            correlation_id=self.run_id,
            occurred_at=self.tick(),
        )

    def command(
        self, change: CustomerChanged, email: str = "", audience_id: str = "", action: str = "upsert"
    ) -> MailchimpMemberUpsert:
        email = email or str(change.row.get("Email") or f"{change.customer.lower()}@example.com")
        return MailchimpMemberUpsert(
            connection_id=change.connection_id,
            customer=change.customer,
            audience_id=audience_id or self.audience_id,
            list_id=self.list_id,
            email_address=email,
            subscriber_hash=subscriber_hash(email),
            merge_fields={"FNAME": "Jane", "LNAME": "Smith"},
            tags_add=["branch-10"],
            action=action,  # type: ignore[arg-type]
            causation_id=change.event_id,
            correlation_id=change.correlation_id,
            occurred_at=self.tick(),
        )

    def synced(self, command: MailchimpMemberUpsert, outcome: str = "created") -> MemberSynced:
        return MemberSynced(
            connection_id=command.connection_id,
            customer=command.customer,
            audience_id=command.audience_id,
            list_id=command.list_id,
            email_address=command.email_address,
            subscriber_hash=command.subscriber_hash,
            outcome=outcome,  # type: ignore[arg-type]
            mailchimp_status="subscribed",
            causation_id=command.event_id,
            correlation_id=command.correlation_id,
            occurred_at=self.tick(),
        )

    def failed(
        self, command: MailchimpMemberUpsert, reason: str = "invalid_resource", status: int = 400
    ) -> MemberSyncFailed:
        return MemberSyncFailed(
            connection_id=command.connection_id,
            customer=command.customer,
            audience_id=command.audience_id,
            list_id=command.list_id,
            email_address=command.email_address,
            subscriber_hash=command.subscriber_hash,
            permanent=True,
            reason=reason,
            detail="Please provide a valid email address.",
            http_status=status,
            response={
                "title": "Invalid Resource",
                "status": status,
                "detail": "Please provide a valid email.",
            },
            causation_id=command.event_id,
            correlation_id=command.correlation_id,
            occurred_at=self.tick(),
        )

    def rejected(
        self, change: CustomerChanged, reason: str = "invalid_email", audience_id: str | None = None
    ) -> CustomerRejected:
        return CustomerRejected(
            connection_id=change.connection_id,
            customer=change.customer,
            audience_id=audience_id,
            reason=reason,  # type: ignore[arg-type]
            field="Email",
            value=str(change.row.get("Email")),
            detail="not an email address",
            causation_id=change.event_id,
            correlation_id=change.correlation_id,
            occurred_at=self.tick(),
        )

    def run_completed(self, created: int = 1) -> PollRunCompleted:
        return PollRunCompleted(
            connection_id=self.connection_id,
            run_id=self.run_id,
            strategy="snapshot",
            full_scan=True,
            started_at=T0,
            rows_read=created,
            odata_requests=1,
            created=created,
            updated=0,
            deleted=0,
            correlation_id=self.run_id,
            occurred_at=self.tick(),
        )


TOPIC_OF = {
    "CustomerChanged": CUSTOMER_CHANGED.name,
    "MailchimpMemberUpsert": MEMBER_UPSERT.name,
    "MemberSynced": MEMBER_RESULT.name,
    "MemberSyncFailed": MEMBER_RESULT.name,
    "CustomerRejected": CUSTOMER_REJECTED.name,
    "PollRunCompleted": POLL_RUN.name,
    "PollRunFailed": POLL_RUN.name,
}


class Records:
    """Numbers records per (topic, partition) the way a broker would."""

    def __init__(self, partitions: int = 1) -> None:
        self.partitions = partitions
        self.next: dict[tuple[str, int], int] = {}

    def raw(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = b"acme:X",
        headers: tuple[tuple[str, bytes], ...] = (),
        partition: int | None = None,
    ) -> ConsumedRecord:
        spec = by_name(topic)
        if partition is None:
            partition = (hash(key) % min(self.partitions, spec.partitions)) if key else 0
        offset = self.next.get((topic, partition), 0)
        self.next[(topic, partition)] = offset + 1
        return ConsumedRecord(topic, partition, offset, int(T0.timestamp() * 1000), key, value, headers)

    def of(self, event: Event, partition: int | None = None) -> ConsumedRecord:
        return self.raw(TOPIC_OF[event.event_type], encode(event), event.key(), partition=partition)

    def many(self, events: Sequence[Event]) -> list[ConsumedRecord]:
        return [self.of(e) for e in events]
