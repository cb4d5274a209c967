"""Is a customer active, per the audience's ``StatusPolicy``, and which status tags does it carry?

SYSPRO has no "inactive" column (reference: syspro.md §2.2): activity is derived from ``CustomerOnHold``
(``Y``), ``CreditStatus`` (``0``-``6`` ageing of the oldest invoice, ``9`` manual hold), the days since
``DateLastSale`` and an optional site column. What happens to an inactive customer's member (tag, archive
or unsubscribe) is decided in ``decide``; this module only says whether and why.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from services.mapper.text import clean_text
from shared.connections import StatusPolicy

__all__ = ["Activity", "StatusRules"]

_OVERDUE = {str(n): f"overdue_{30 * n}" for n in range(1, 7)}


@functools.lru_cache(maxsize=8192)
def _parse_date(value: str) -> date | None:
    """The date part of an OData datetime (``2024-02-29T00:00:00Z``); dates are few, so cached."""
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _as_date(value: object) -> date | None:
    return _parse_date(value) if isinstance(value, str) and value.strip() else None


@dataclass(frozen=True, slots=True)
class Activity:
    """Whether the customer is active, why not, and the status tags it should carry."""

    active: bool
    reasons: tuple[str, ...]
    #: Tags for an inactive customer when the action is ``tag`` (on-hold and/or inactive).
    inactive_tags: tuple[str, ...]
    #: ``overdue_30`` ... ``overdue_180`` when overdue tags are on and CreditStatus is 1-6.
    overdue_tag: str | None


class StatusRules:
    """A ``StatusPolicy`` prepared once per audience, evaluated per row."""

    def __init__(self, policy: StatusPolicy) -> None:
        self.policy = policy
        self._credit = frozenset(s.strip() for s in policy.inactive_credit_statuses)
        self._column = policy.inactive_column
        self._column_values = frozenset(v.strip().upper() for v in policy.inactive_values)
        self._days = policy.inactive_after_days_without_sale
        #: Every status tag this policy can put on a member: removed again once it no longer applies.
        self.status_tags: frozenset[str] = frozenset(
            {policy.inactive_tag, policy.on_hold_tag}
            | (set(_OVERDUE.values()) if policy.overdue_tags else set())
        )

    def evaluate(self, row: Mapping[str, object], today: date) -> Activity:
        """Evaluate the policy on a row; unknown or unparsable values never make a customer inactive."""
        policy = self.policy
        reasons: list[str] = []
        hold = False
        if policy.on_hold_is_inactive and clean_text(row.get("CustomerOnHold")).upper() == "Y":
            reasons.append("on_hold")
            hold = True
        credit = clean_text(row.get("CreditStatus"))
        if credit and credit in self._credit:
            reasons.append("credit_hold" if credit == "9" else "credit_status")
            hold = hold or credit == "9"
        if self._days is not None:
            last = _as_date(row.get("DateLastSale")) or _as_date(row.get("DateCustAdded"))
            if last is not None and (today - last).days > self._days:
                reasons.append("no_recent_sale")
        if self._column is not None and clean_text(row.get(self._column)).upper() in self._column_values:
            reasons.append("site_rule")
        tags: tuple[str, ...] = ()
        if reasons:
            others = any(r not in ("on_hold", "credit_hold") for r in reasons)
            tags = ((policy.on_hold_tag,) if hold else ()) + ((policy.inactive_tag,) if others else ())
        overdue = _OVERDUE.get(credit) if policy.overdue_tags else None
        return Activity(not reasons, tuple(reasons), tags, overdue)
