"""Which customers are active, per the audience's StatusPolicy."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.mapper.status_policy import StatusRules
from shared.connections import StatusPolicy
from tests.mapper.factories import row

TODAY = date(2025, 6, 30)


def _rules(**policy: Any) -> StatusRules:
    return StatusRules(StatusPolicy.model_validate(policy))


def test_a_current_customer_is_active_without_tags() -> None:
    activity = _rules().evaluate(row(), TODAY)
    assert (activity.active, activity.reasons, activity.inactive_tags, activity.overdue_tag) == (
        True,
        (),
        (),
        None,
    )


def test_on_hold_and_manual_credit_hold_are_inactive_with_the_on_hold_tag() -> None:
    assert _rules().evaluate(row(CustomerOnHold="Y "), TODAY).inactive_tags == ("on-hold",)
    held = _rules().evaluate(row(CreditStatus="9"), TODAY)
    assert (held.active, held.reasons, held.inactive_tags) == (False, ("credit_hold",), ("on-hold",))


def test_on_hold_can_be_ignored() -> None:
    assert _rules(on_hold_is_inactive=False).evaluate(row(CustomerOnHold="Y"), TODAY).active


def test_listed_credit_statuses_are_inactive_with_the_inactive_tag() -> None:
    activity = _rules(inactive_credit_statuses=["6", "9"]).evaluate(row(CreditStatus="6"), TODAY)
    assert (activity.active, activity.reasons, activity.inactive_tags) == (
        False,
        ("credit_status",),
        ("inactive",),
    )


def test_overdue_tags_follow_credit_status_one_to_six() -> None:
    rules = _rules(overdue_tags=True)
    tags = [rules.evaluate(row(CreditStatus=str(n)), TODAY).overdue_tag for n in range(8)]
    assert tags == [
        None,
        "overdue_30",
        "overdue_60",
        "overdue_90",
        "overdue_120",
        "overdue_150",
        "overdue_180",
        None,
    ]
    assert _rules().evaluate(row(CreditStatus="3"), TODAY).overdue_tag is None


def test_no_sale_for_too_long_is_inactive() -> None:
    rules = _rules(inactive_after_days_without_sale=365)
    assert rules.evaluate(row(DateLastSale="2024-07-01T00:00:00Z"), TODAY).active
    stale = rules.evaluate(row(DateLastSale="2024-06-29T00:00:00Z"), TODAY)
    assert (stale.active, stale.reasons) == (False, ("no_recent_sale",))


def test_a_customer_without_a_sale_counts_from_when_it_was_added() -> None:
    rules = _rules(inactive_after_days_without_sale=30)
    assert rules.evaluate(row(DateLastSale=None, DateCustAdded="2025-06-20T00:00:00Z"), TODAY).active
    assert not rules.evaluate(row(DateLastSale=None, DateCustAdded="2025-01-01T00:00:00Z"), TODAY).active


def test_unknown_or_unparsable_dates_never_make_a_customer_inactive() -> None:
    rules = _rules(inactive_after_days_without_sale=1)
    assert rules.evaluate(row(DateLastSale="not a date", DateCustAdded=None), TODAY).active


def test_a_site_column_rule_is_case_and_padding_insensitive() -> None:
    rules = _rules(inactive_column="UserField1", inactive_values=["INACTIVE", "dnm"])
    assert not rules.evaluate(row(UserField1=" Inactive "), TODAY).active
    assert not rules.evaluate(row(UserField1="DNM"), TODAY).active
    assert rules.evaluate(row(UserField1="VIP"), TODAY).active


def test_several_reasons_give_both_tags() -> None:
    rules = _rules(inactive_column="UserField1", inactive_values=["INACTIVE"])
    activity = rules.evaluate(row(CustomerOnHold="Y", UserField1="INACTIVE"), TODAY)
    assert activity.inactive_tags == ("on-hold", "inactive")
