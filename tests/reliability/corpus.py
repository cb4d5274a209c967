"""The hostile and dirty input corpus: SYSPRO rows users really type, and records nobody should write.

``CUSTOMERS`` are created in SYSPRO and must each end as a member or as a rejection with a clear
reason. ``raw_records`` are written straight onto every topic: each must be stored by the audit with
the codec's reason (audited topics), dead-lettered with that reason by the service that consumes it,
or skipped by a service that reads it as state, and none may stop a service.
"""

# ruff: noqa: RUF001  (Windows-1252 punctuation in literals is deliberate data)

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from shared.codec import encode
from shared.events import CustomerChanged, MemberSynced
from shared.topics import ALL_TOPICS

__all__ = ["CUSTOMERS", "Case", "RawRecord", "email_of_length", "oversized_changes", "raw_records"]


def email_of_length(length: int, tag: str) -> str:
    """A syntactically valid address of exactly ``length`` characters (64-character local part)."""
    local = (tag + "x" * 64)[:64]
    domain_len = length - len(local) - 1
    labels: list[str] = []
    remaining = domain_len - len(".org")
    while remaining > 0:
        size = min(63, remaining)
        if remaining - size == 1:  # never leave a lone separator
            size -= 1
        labels.append("d" * size)
        remaining -= size + 1
    address = f"{local}@{'.'.join(labels)}.org"
    assert len(address) == length, (len(address), length)
    return address


@dataclass(frozen=True)
class Case:
    """A customer of the corpus: its SYSPRO row and what must become of it."""

    code: str
    row: dict[str, Any]
    #: "member", or the rejection reason the audit must show.
    outcome: str
    why: str
    #: Merge fields the member must carry (beyond what the policy comparison already checks).
    fields: dict[str, str] = field(default_factory=dict)


def _row(code: str, email: str, **extra: Any) -> dict[str, Any]:
    return {"Customer": code, "Name": f"Corpus {code}".strip()[:50], "Email": email, "Branch": "10", **extra}


CUSTOMERS: tuple[Case, ...] = (
    Case("CBLANK", _row("CBLANK", ""), "no_email", "blank email"),
    Case("CSPACES", _row("CSPACES", "    "), "no_email", "email of spaces"),
    Case("CPLACE", _row("CPLACE", "n/a"), "no_email", "placeholder email"),
    Case("CNOAT", _row("CNOAT", "john.example.com"), "invalid_email", "email without @"),
    Case("CTRAIL", _row("CTRAIL", "john@"), "invalid_email", "email without domain"),
    Case("C255", _row("C255", email_of_length(255, "c255")), "invalid_email", "255-character email"),
    Case("C254", _row("C254", email_of_length(254, "c254")), "member", "254-character email (the limit)"),
    Case(
        "CMULTI",
        _row("CMULTI", "first@multi.example.org; second@multi.example.org"),
        "member",
        "two addresses: the first valid one is used",
    ),
    Case(
        "CMULTI2",
        _row("CMULTI2", "broken@, good@multi2.example.org"),
        "member",
        "two addresses, the first invalid",
    ),
    Case("CMULTIBAD", _row("CMULTIBAD", "a@; b@"), "invalid_email", "two addresses, none valid"),
    Case(
        "CUNICODE",
        _row("CUNICODE", "zoe@unicode.example.org", Name="Ågård Ørsted Café", Contact="Zoë Ørsted"),
        "member",
        "non-ASCII letters",
        {"FNAME": "Zoë", "LNAME": "Ørsted"},
    ),
    Case(
        "CCP1252",
        _row("CCP1252", "jl@cp1252.example.org", Name="“Best” Outdoor – € Shop", Contact="Jean-Luc O’Neil"),
        "member",
        "Windows-1252-only punctuation and the euro sign",
        {"FNAME": "Jean-Luc", "LNAME": "O’Neil"},
    ),
    Case(
        "CNOT1252",
        _row("CNOT1252", "lukasz@not1252.example.org", Contact="Łukasz Żak"),
        "member",
        "letters outside Windows-1252 (SYSPRO stores them as ?)",
    ),
    Case(
        "CCONTROL",
        _row("CCONTROL", "ctrl@control.example.org", Name="Ctrl\x1b\x07 Co\x00", Contact="Ann\tLee\r\nSmith"),
        "member",
        "control characters, tabs and line breaks",
    ),
    Case(
        "CMAXLEN",
        _row(
            "CMAXLEN",
            "max@maxlen.example.org",
            Name="N" * 50,
            Contact="Maximilian " + "L" * 39,
            Telephone="9" * 20,
            SoldToAddr1="A" * 40,
            SoldToAddr2="B" * 40,
            SoldToAddr3="C" * 40,
            SoldToAddr4="D" * 40,
            SoldPostalCode="1" * 10,
        ),
        "member",
        "every mapped column at its full SYSPRO width",
    ),
    Case("CDUPA", _row("CDUPA", "dup@dup.example.org"), "member|duplicate_email", "duplicate email (first)"),
    Case("CDUPB", _row("CDUPB", " DUP@Dup.Example.org "), "member|duplicate_email", "same, other case"),
    Case("O'BRIEN", _row("O'BRIEN", "obrien@codes.example.org"), "member", "quote in the code"),
    Case("A/B 1", _row("A/B 1", "slash@codes.example.org"), "member", "slash and space in the code"),
    Case("50% & =", _row("50% & =", "pct@codes.example.org"), "member", "URL metacharacters in the code"),
    Case("x') or (1 eq 1", _row("x') or (1 eq 1", "inj@codes.example.org"), "member", "OData injection"),
    Case("' or 'a' eq 'a", _row("' or 'a' eq 'a", "inj2@codes.example.org"), "member", "OData injection"),
    Case("RECREATE", _row("RECREATE", "again@recreate.example.org"), "member", "deleted and re-created"),
)
#: Corpus customers the test deletes (through the poller's key lookups) and how many re-created.
DELETED = ("x') or (1 eq 1", "O'BRIEN")


def oversized_changes(connection_id: str) -> list[CustomerChanged]:
    """Valid CustomerChanged events with values far beyond any SYSPRO column (written straight onto the
    topic): the mapper must clip them for Mailchimp or reject them, never fail."""
    huge: dict[str, str | int | float | bool | None] = {
        "Customer": "HUGE1",
        "Name": "N" * 10_000,
        "Contact": "Firstname " + "L" * 10_000,
        "Email": "huge@oversized.example.org",
        "Telephone": "7" * 300,
        "Branch": "B" * 300,
        "SoldToAddr1": "A" * 500,
        "SoldToAddr3": "C" * 500,
        "SoldToAddr4": "S" * 500,
        "SoldPostalCode": "Z" * 500,
    }
    bad: dict[str, str | int | float | bool | None] = {
        "Customer": "HUGE2",
        "Name": "N" * 5000,
        "Email": "e" * 300 + "@oversized.example.org",
    }
    return [
        CustomerChanged(
            connection_id=connection_id,
            customer=str(row["Customer"]),
            change="created",
            row=row,
            row_hash=f"oversized-{row['Customer']}",
            run_id=uuid4(),
            strategy="snapshot",
        )
        for row in (huge, bad)
    ]


@dataclass(frozen=True)
class RawRecord:
    topic: str
    name: str
    key: bytes | None
    value: bytes | None
    #: The codec's reason code for it (``unexpected_type``: a valid event on the wrong topic).
    reason: str


def _raw_change(connection_id: str) -> CustomerChanged:
    return CustomerChanged(
        connection_id=connection_id,
        customer="RAWX",
        change="updated",
        row={"Customer": "RAWX", "Email": "raw@raw.example.org"},
        row_hash="raw",
        run_id=uuid4(),
        strategy="snapshot",
    )


def raw_records(connection_id: str, state_keys: Mapping[str, bytes]) -> list[RawRecord]:
    """Malformed and wrong-version records for every topic. ``state_keys`` holds, per compacted topic, a
    real key (a customer's, the connection's, an owned address's), so the garbage shadows real state.
    Each valid event is new (its own event id), so the audit stores none as a repeat of another."""
    out: list[RawRecord] = []
    for spec in ALL_TOPICS:
        compacted = spec.cleanup_policy == "compact"
        key = state_keys[spec.name] if compacted else f"{connection_id}:RAW-{spec.name}".encode()
        v2 = json.loads(encode(_raw_change(connection_id)))
        v2["schema_version"] = 2
        invalid = json.loads(encode(_raw_change(connection_id)))
        invalid["connection_id"] = "not a valid id!"
        if spec.name == "syspro.customer.changed.v1":
            wrong = encode(
                MemberSynced(
                    connection_id=connection_id,
                    customer="RAWX",
                    audience_id="customers",
                    list_id="x",
                    email_address="raw@raw.example.org",
                    subscriber_hash="0" * 32,
                    outcome="updated",
                    mailchimp_status="subscribed",
                )
            )
        else:
            wrong = encode(_raw_change(connection_id))
        cases: list[tuple[str, bytes | None, str]] = [
            ("not json", b"{not json at all", "not_json"),
            ("binary", b"\xff\xfe\x00\x81garbage", "not_json"),
            ("empty", b"", "not_json"),
            ("array", b"[1, 2, 3]", "not_an_object"),
            ("no event_type", b'{"hello": "world"}', "missing_event_type"),
            ("unknown type", b'{"event_type": "Exploded", "schema_version": 1}', "unknown_event_type"),
            ("schema_version 2", json.dumps(v2).encode(), "unsupported_schema_version"),
            ("invalid payload", json.dumps(invalid).encode(), "invalid_payload"),
            ("huge garbage", b"x" * 300_000, "not_json"),
            ("wrong event type", wrong, "unexpected_type"),
        ]
        if not compacted:
            cases.append(("tombstone", None, "not_json"))
        out += [RawRecord(spec.name, name, key, value, reason) for name, value, reason in cases]
    return out
