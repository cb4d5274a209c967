"""One valid sample of every event type, for round-trip tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared.events import (
    AudienceMemberState,
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

RUN = uuid.uuid4()
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def samples() -> list[Event]:
    base = {"connection_id": "acme", "correlation_id": RUN}
    member = {
        "customer": "000019",
        "audience_id": "main",
        "list_id": "a1b2c3",
        "email_address": "Jane@Example.com",
        "subscriber_hash": "3c1d1c1e5d1e0f6f4e7b5a1f0e2d3c4b",
    }
    return [
        CustomerChanged(
            **base,
            customer="000019",
            change="created",
            row={"Name": "Johnsons Bicycles", "CreditLimit": 99999, "DateLastPay": None},
            row_hash="ab" * 16,
            run_id=RUN,
            strategy="snapshot",
        ),
        CustomerSnapshot(**base, customer="000019", row_hash="ab" * 16, source_version="AAAAAAAB9Xk="),
        PollCheckpoint(
            **base, strategy="cursor", cursor="AAAAAAAB9Xk=", last_run_id=RUN, last_completed_at=NOW
        ),
        PollRunCompleted(
            **base,
            run_id=RUN,
            strategy="snapshot",
            full_scan=True,
            started_at=NOW,
            rows_read=12000,
            odata_requests=3,
            created=12000,
            updated=0,
            deleted=0,
        ),
        PollRunFailed(
            **base, run_id=RUN, started_at=NOW, reason="auth_refused", detail="401 after re-authentication"
        ),
        MailchimpMemberUpsert(
            **base,
            **member,
            merge_fields={"FNAME": "Jane", "ADDRESS": {"addr1": "12 Main Rd"}},
            tags_add=["branch-10"],
            previous_email="old@example.com",
        ),
        CustomerRejected(**base, customer="000020", reason="invalid_email", field="Email", value="john@"),
        MemberState(
            **base,
            customer="000019",
            audiences={"main": AudienceMemberState(email_address="jane@example.com", terminal=True)},
        ),
        EmailOwnership(**base, audience_id="main", subscriber_hash="3c1d", customer="000019"),
        MemberSynced(
            **base, **member, outcome="renamed", mailchimp_status="subscribed", changed=["email_address"]
        ),
        MemberSyncFailed(
            **base,
            **member,
            permanent=True,
            reason="invalid_email",
            http_status=400,
            response={"title": "Invalid Resource", "status": 400},
        ),
    ]
