"""The audience comparison itself (no broker): it passes a right audience and names each kind of wrong."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from shared.connections import Audience
from simulators.expectations import Expectation, compare, expect
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator
from simulators.syspro import generate_company

LIST = "l1"
TODAY = date(2030, 5, 1)


def _audience(**policy: Any) -> Audience:
    return Audience.model_validate(
        {
            "id": "customers",
            "list_id": LIST,
            "credential": "mc",
            "tags": {"from_columns": {"Branch": "branch-"}},
            "policy": policy,
        }
    )


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return generate_company(400, seed=3, today=TODAY)


def _mailchimp_from(expectation: Expectation, owner: int = 0) -> MailchimpSimulator:
    """An audience holding exactly the expected members (claimant ``owner`` of shared addresses)."""
    sim = MailchimpSimulator(MailchimpSimConfig())
    sim.create_list(list_id=LIST)
    for claimants in expectation.claimants.values():
        member = claimants[min(owner, len(claimants) - 1)]
        sim.seed_member(LIST, member.email, member.status, dict(member.merge_fields), member.tags)
    return sim


def _check(rows: list[dict[str, Any]], sim: MailchimpSimulator, audience: Audience, **kw: Any) -> Any:
    return compare((rows, sim.members(LIST)), audience, today=TODAY, **kw)


def test_an_audience_holding_the_expected_members_matches(rows: list[dict[str, Any]]) -> None:
    audience = _audience()
    expectation = expect(rows, audience, today=TODAY)
    report = _check(rows, _mailchimp_from(expectation), audience)
    assert report.ok, report.render()
    assert report.members_compared == report.matched == expectation.expected_members > 300


def test_any_claimant_of_a_shared_address_may_own_it(rows: list[dict[str, Any]]) -> None:
    audience = _audience()
    expectation = expect(rows, audience, today=TODAY)
    assert expectation.duplicates
    report = _check(rows, _mailchimp_from(expectation, owner=1), audience)
    assert report.ok, report.render()


def test_dirty_emails_are_expected_rejected_with_the_mappers_reason(rows: list[dict[str, Any]]) -> None:
    base = {k: v for k, v in rows[0].items()}
    dirty = [
        {**base, "Customer": "D1", "Email": ""},
        {**base, "Customer": "D2", "Email": "john@"},
        {**base, "Customer": "D3", "Email": "n/a"},
    ]
    expectation = expect(dirty, _audience(), today=TODAY)
    assert expectation.rejected == {"D1": "no_email", "D2": "invalid_email", "D3": "no_email"}
    assert not expectation.claimants


def test_a_wrong_field_status_or_tag_is_reported_with_the_customer(rows: list[dict[str, Any]]) -> None:
    audience = _audience()
    expectation = expect(rows, audience, today=TODAY)
    sim = _mailchimp_from(expectation)
    single = [ms[0] for ms in expectation.claimants.values() if len(ms) == 1]
    first, second, third = single[:3]
    sim.seed_member(LIST, first.email, first.status, {**first.merge_fields, "FNAME": "Wrong"}, first.tags)
    sim.seed_member(LIST, second.email, "unsubscribed", dict(second.merge_fields), second.tags)
    sim.seed_member(LIST, third.email, third.status, dict(third.merge_fields), [*third.tags, "stray"])
    report = _check(rows, sim, audience)
    found = {(p.kind, p.customer) for p in report.problems}
    assert found == {("fields", first.customer), ("fields", second.customer), ("fields", third.customer)}
    assert "FNAME" in str(report) and "status: want subscribed, have unsubscribed" in str(report)


def test_missing_and_unexpected_members_are_reported(rows: list[dict[str, Any]]) -> None:
    audience = _audience()
    expectation = expect(rows, audience, today=TODAY)
    kept = [r for r in rows if r["Customer"] != next(iter(expectation.claimants.values()))[0].customer]
    sim = _mailchimp_from(expect(kept, audience, today=TODAY))
    sim.seed_member(LIST, "nobody@stray.example.com")
    report = _check(rows, sim, audience)
    assert sorted(p.kind for p in report.problems) == ["missing", "unexpected"]


def test_an_opted_out_contact_must_stay_unsubscribed(rows: list[dict[str, Any]]) -> None:
    audience = _audience()
    expectation = expect(rows, audience, today=TODAY)
    sim = _mailchimp_from(expectation)
    member = next(ms[0] for ms in expectation.claimants.values() if len(ms) == 1)
    report = _check(rows, sim, audience, opted_out=[member.email])
    assert {p.kind for p in report.problems} == {"fields", "resubscribed"}
    sim.unsubscribe_by_contact(LIST, member.email)
    assert _check(rows, sim, audience, opted_out=[member.email]).ok


def test_inactive_customers_under_archive_are_archived_or_absent(rows: list[dict[str, Any]]) -> None:
    audience = _audience(inactive_action="archive")
    expectation = expect(rows, audience, today=TODAY)
    held = [c for c, h in expectation.excluded.items() if h is not None]
    assert held
    sim = _mailchimp_from(expectation)
    row = next(r for r in rows if r["Customer"] == held[0])
    seeded = sim.seed_member(LIST, row["Email"].strip())
    report = _check(rows, sim, audience)
    assert [(p.kind, p.customer) for p in report.problems] == [("inactive", held[0])]
    sim.store.lists[LIST].members[seeded["id"]].status = "archived"
    assert _check(rows, sim, audience).ok


def test_a_deleted_customer_keeps_its_member_with_the_policys_mark(rows: list[dict[str, Any]]) -> None:
    audience = _audience()
    expectation = expect(rows, audience, today=TODAY)
    gone = next(ms[0] for ms in expectation.claimants.values() if len(ms) == 1)
    remaining = [r for r in rows if r["Customer"] != gone.customer]
    departed = {gone.customer: next(r for r in rows if r["Customer"] == gone.customer)}
    sim = _mailchimp_from(expectation)
    assert not _check(remaining, sim, audience, departed=departed).ok  # no "inactive" tag yet
    sim.seed_member(LIST, gone.email, gone.status, dict(gone.merge_fields), [*gone.tags, "inactive"])
    assert _check(remaining, sim, audience, departed=departed).ok
