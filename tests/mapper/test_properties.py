"""Properties of the mapper over generated SYSPRO rows: it never raises, every output is a valid event,
padding and control characters never reach Mailchimp, and the subscriber hash is always Mailchimp's."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.mapper.email_identity import is_valid_email, subscriber_hash
from shared.events import (
    CustomerChanged,
    CustomerRejected,
    EmailOwnership,
    Event,
    MailchimpMemberUpsert,
    MemberState,
    MemberSynced,
)
from tests.mapper.factories import CONNECTION, Harness, config

RUN = uuid.UUID(int=1)

# Letters, digits, punctuation, accented and cp1252 characters, Unicode spaces, controls (C0, DEL, C1),
# zero-width and bidi marks: what fixed-width, non-Unicode SYSPRO columns and copy-paste produce.
_CHARS = st.one_of(
    st.sampled_from(list("abcXYZ019 .,'-&/()@;")),
    st.sampled_from(list("éüñøÓß\u2019\u201c\u201d\u2013\u2014\u20ac\u2122\u2026")),
    st.sampled_from(list("\t\n\r\x00\x07\x1b\x7f\x85\x92\x96\x81\u00a0\u2003\u200b\u200e\u202e\ufeff\u00ad")),
    st.characters(blacklist_categories=["Cs"]),
)
_TEXT = st.text(_CHARS, max_size=45)
_PADDED = st.builds(
    lambda pre, text, post: " " * pre + text + " " * post, st.integers(0, 3), _TEXT, st.integers(0, 12)
)
_LOCAL = st.text(st.sampled_from(list("abcdefghij.+_-0")), min_size=1, max_size=12)
_DOMAIN = st.sampled_from(
    ["example.com", "Example.CO.uk", "sub.example.org", "example", "exa mple.com", "x.y"]
)
_ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}", _LOCAL, _DOMAIN)
_EMAIL = st.one_of(
    _ADDRESS,
    st.builds(lambda a: a.upper(), _ADDRESS),
    st.builds(lambda a, pad: f"{' ' * pad}{a}{' ' * pad}", _ADDRESS, st.integers(0, 5)),
    st.builds(
        lambda a, b, sep: f"{a}{sep}{b}",
        _ADDRESS,
        _ADDRESS,
        st.sampled_from(["; ", ";", ",", ", ", " ", " / "]),
    ),
    st.sampled_from(
        ["", "   ", "n/a", "N/A", "none", "-", "john@", "@x.com", "a@@b.com", "a b@c.com", "x" * 300]
    ),
    _TEXT,
)
_DATE = st.one_of(
    st.none(),
    st.just(""),
    st.just("garbage"),
    st.dates().map(lambda d: f"{d.isoformat()}T00:00:00Z"),
)
_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False)
)
_CELL = st.one_of(_PADDED, _SCALAR)


@st.composite
def syspro_rows(draw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Name": draw(_PADDED),
        "Email": draw(_EMAIL),
        "Contact": draw(
            st.one_of(_PADDED, st.sampled_from(["Smith, Jane", "Dr. Jane van der Berg", "Accounts Dept"]))
        ),
        "Telephone": draw(_CELL),
        "CustomerOnHold": draw(st.sampled_from(["Y", "N", " ", "y", "", "Y  ", None])),
        "CreditStatus": draw(st.one_of(st.sampled_from([str(n) for n in range(10)] + [" ", ""]), _TEXT)),
        "DateLastSale": draw(_DATE),
        "DateCustAdded": draw(_DATE),
        "Nationality": draw(st.sampled_from(["ZAF", "USA", "GBR", "   ", "$  ", "XYZ", ""])),
        "UserField1": draw(st.sampled_from(["", "INACTIVE", "VIP", "DNM "])),
    }
    for column in (
        "SoldToAddr1",
        "SoldToAddr2",
        "SoldToAddr3",
        "SoldToAddr4",
        "SoldToAddr5",
        "SoldPostalCode",
        "Branch",
        "Area",
        "Salesperson",
        "CustomerClass",
    ):
        if draw(st.booleans()):
            row[column] = draw(_CELL)
    return row


AUDIENCES = [
    {
        "id": "tagged",
        "tags": {
            "from_columns": {
                "Branch": "branch-",
                "Area": "area-",
                "Salesperson": "rep-",
                "CustomerClass": "class-",
            },
            "fixed": ["syspro"],
        },
        "policy": {
            "overdue_tags": True,
            "inactive_after_days_without_sale": 365,
            "inactive_column": "UserField1",
            "inactive_values": ["INACTIVE", "DNM"],
        },
        "mapping": {
            "company_merge_tag": "COMPANY",
            "extra": {"REP": "Salesperson", "CLASS": "CustomerClass"},
        },
    },
    {
        "id": "archived",
        "list_id": "L2",
        "policy": {"inactive_action": "archive"},
        "email": {"multiple": "reject"},
    },
    {
        "id": "unsub",
        "list_id": "L3",
        "status_if_new": "pending",
        "policy": {"inactive_action": "unsubscribe"},
        "email": {"duplicates": "most_recent"},
    },
]


def _is_clean(text: str) -> bool:
    return (
        text == text.strip()
        and "  " not in text
        and not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text)
        and not any(ch.isspace() and ch != " " for ch in text)
    )


def _check_command(command: MailchimpMemberUpsert) -> None:
    assert command.email_address == command.email_address.strip() and is_valid_email(command.email_address)
    assert command.subscriber_hash == hashlib.md5(command.email_address.strip().lower().encode()).hexdigest()
    if command.previous_email is not None:
        assert is_valid_email(command.previous_email)
    for tag, value in command.merge_fields.items():
        values = value.values() if tag == "ADDRESS" else [value]
        for text in values:
            assert isinstance(text, str) and _is_clean(text), (tag, text)
            assert len(text) <= 255
    if "ADDRESS" in command.merge_fields:
        address = command.merge_fields["ADDRESS"]
        assert all(address[k] for k in ("addr1", "city", "state", "zip"))
        assert len(address.get("country", "ZA")) == 2
    for tag in command.tags_add + command.tags_remove:
        assert tag and _is_clean(tag) and len(tag) <= 100


def _check(changes: list[CustomerChanged], out: list[Event]) -> None:
    for event in out:
        assert isinstance(event, MailchimpMemberUpsert | CustomerRejected | MemberState | EmailOwnership)
        if isinstance(event, MailchimpMemberUpsert):
            _check_command(event)
        if isinstance(event, CustomerRejected):
            assert event.reason
            if event.reason in ("no_email", "invalid_email", "duplicate_email"):
                assert event.field == "Email" and (event.value is None or len(event.value) <= 255)
    for source in changes:
        if source.change == "deleted":
            continue
        answered = {
            e.audience_id
            for e in out
            if isinstance(e, MailchimpMemberUpsert | CustomerRejected) and e.customer == source.customer
        }
        assert answered == {a["id"] for a in AUDIENCES}, "every audience gets a command or a rejection"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(syspro_rows(), min_size=1, max_size=6))
def test_any_row_maps_to_valid_commands_or_reasoned_rejections(rows: list[dict[str, Any]]) -> None:
    h = Harness(config(*AUDIENCES))
    changes = [
        CustomerChanged(
            connection_id=CONNECTION,
            customer=f"C{i}",
            change="created",
            row={**r, "Customer": f"C{i}"},
            row_hash="h",
            run_id=RUN,
            strategy="snapshot",
        )
        for i, r in enumerate(rows)
    ]
    _check(changes, h.feed(*changes))


_POOL = ["a@example.com", "B@example.com", "c@example.com", "", "bad@", "a@example.com; c@example.com"]
_STEP = st.tuples(
    st.sampled_from(["C1", "C2", "C3"]),
    st.sampled_from(["created", "updated", "updated", "deleted", "unsubscribed"]),
    st.sampled_from(_POOL),
    st.sampled_from(["Y", "N", "N"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STEP, min_size=1, max_size=25))
@example(
    [
        ("C1", "created", "a@example.com", "N"),
        ("C1", "unsubscribed", "", "N"),
        ("C1", "updated", "a@example.com", "Y"),
        ("C1", "updated", "a@example.com", "N"),
    ]
)
def test_over_any_history_addresses_have_one_owner_and_terminal_members_are_never_revived(
    steps: list[tuple[str, str, str, str]],
) -> None:
    h = Harness(config(*AUDIENCES))
    archived_while_terminal: set[tuple[str, str]] = set()
    for customer, kind, email, hold in steps:
        key = f"{CONNECTION}:{customer}"
        if kind == "unsubscribed":
            memory = h.tables.member(0, key) or {}
            results = [
                MemberSynced(
                    connection_id=CONNECTION,
                    customer=customer,
                    audience_id=aid,
                    list_id="L",
                    email_address=m.email_address,
                    subscriber_hash=m.subscriber_hash,
                    outcome="updated",
                    mailchimp_status="unsubscribed",
                )
                for aid, m in memory.items()
                if m.email_address and m.subscriber_hash
            ]
            h.feed(*results)
            continue
        event = CustomerChanged(
            connection_id=CONNECTION,
            customer=customer,
            change=kind,  # type: ignore[arg-type]
            row={} if kind == "deleted" else {"Customer": customer, "Email": email, "CustomerOnHold": hold},
            row_hash="h",
            run_id=RUN,
            strategy="snapshot",
        )
        out = h.feed(event)
        _check([event], out)
        memory = h.tables.member(0, key) or {}
        for command in (e for e in out if isinstance(e, MailchimpMemberUpsert) and e.customer == customer):
            if command.action == "upsert":
                assert (customer, command.audience_id) not in archived_while_terminal, (
                    "terminal member revived"
                )
                if command.audience_id != "unsub" and kind != "deleted":  # a deletion tags, then frees
                    owner = h.tables.owner(f"{CONNECTION}:{command.audience_id}:{command.subscriber_hash}")
                    assert owner == customer
            elif command.action == "archive" and memory[command.audience_id].terminal:
                archived_while_terminal.add((customer, command.audience_id))
        for owner_key, owner in h.tables.owners.items():
            held = (h.tables.member(0, f"{CONNECTION}:{owner}") or {}).get(owner_key.split(":")[1])
            assert held is not None and held.subscriber_hash == owner_key.split(":")[2], (
                "owner remembers its address"
            )
        for aid, member in memory.items():
            if member.subscriber_hash is not None and member.email_address is not None:
                assert member.subscriber_hash == subscriber_hash(member.email_address), aid
