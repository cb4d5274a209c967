"""Comparing a Mailchimp audience with an ``Expectation``: what differs, counted and readable.

Members are API documents (``GET /lists/{id}/members`` items, archived ones included). The checks:
every expected member exists with the right merge fields, tags and status (any one claimant of a shared
address may own it); a deleted customer's member shows the policy's action; an inactive customer's
member, if any, is archived or unsubscribed as the policy says; no member is unexpected; no address
has two members; no contact who opted out is subscribed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.mapper.email_identity import subscriber_hash

if TYPE_CHECKING:
    from simulators.expectations import Expectation, ExpectedMember

__all__ = ["Problem", "Report", "compare_members", "member_problems"]

#: Statuses each inactive action leaves a member in (``tag`` keeps the member's status).
ACTION_STATUS = {"archive": "archived", "unsubscribe": "unsubscribed"}


@dataclass(frozen=True)
class Problem:
    kind: str
    email: str
    detail: str
    customer: str | None = None

    def __str__(self) -> str:
        who = f"customer {self.customer} " if self.customer else ""
        return f"{self.kind:<14} {who}<{self.email}>: {self.detail}"


@dataclass
class Report:
    """The outcome of one comparison; ``ok`` when nothing differs."""

    expectation: Expectation
    members_compared: int = 0
    members_in_audience: int = 0
    matched: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        e = self.expectation
        kinds: dict[str, int] = {}
        for p in self.problems:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        return {
            "members_in_audience": self.members_in_audience,
            "members_expected": e.expected_members + len(e.departed),
            "members_compared": self.members_compared,
            "matched": self.matched,
            "rejected_expected": e.rejections_expected,
            "duplicate_addresses": len(e.duplicates),
            "excluded_by_policy": len(e.excluded),
            "departed": len(e.departed),
            "problems": len(self.problems),
            **{f"problems.{k}": v for k, v in sorted(kinds.items())},
        }

    def render(self, limit: int = 25) -> str:
        """A readable summary and the first ``limit`` differences."""
        counts = self.counts()
        head = "audience matches SYSPRO under the policy" if self.ok else "audience DIFFERS from SYSPRO"
        lines = [f"{head}: " + ", ".join(f"{k}={v}" for k, v in counts.items())]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _field_diffs(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """Merge fields that differ. A country the mapping left out is Mailchimp's default: not compared."""
    diffs: list[str] = []
    for tag, want in expected.items():
        have = actual.get(tag, "")
        if isinstance(want, Mapping):
            have_map = have if isinstance(have, Mapping) else {}
            for part, value in want.items():
                if _text(value) != _text(have_map.get(part)):
                    diffs.append(f"{tag}.{part}: want {_text(value)!r}, have {_text(have_map.get(part))!r}")
            if not have_map:
                diffs.append(f"{tag}: want an address, have {have!r}")
        elif _text(want) != _text(have):
            diffs.append(f"{tag}: want {_text(want)!r}, have {_text(have)!r}")
    return diffs


def _tags(member: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(t.get("name", "")).casefold() for t in member.get("tags") or [])


def member_problems(want: ExpectedMember, member: Mapping[str, Any]) -> list[str]:
    """How ``member`` (an API document) differs from ``want``; empty when it is as expected."""
    diffs = _field_diffs(want.merge_fields, member.get("merge_fields") or {})
    if member.get("status") != want.status:
        diffs.append(f"status: want {want.status}, have {member.get('status')}")
    have = _tags(member)
    if want.tags_at_least:
        missing = want.tags - have
        if missing:
            diffs.append(f"tags: missing {sorted(missing)}")
    elif have != want.tags:
        diffs.append(f"tags: want {sorted(want.tags)}, have {sorted(have)}")
    return diffs


def _check_identity(members: Sequence[Mapping[str, Any]], report: Report) -> None:
    """One member per address, and a member's id is its address's hash (no duplicate under two ids)."""
    seen: dict[str, str] = {}
    for member in members:
        email = str(member.get("email_address", ""))
        folded = email.strip().casefold()
        if folded in seen:
            report.problems.append(Problem("duplicate", email, f"address also on member {seen[folded]}"))
        seen[folded] = str(member.get("id"))
        if member.get("id") != subscriber_hash(email):
            report.problems.append(
                Problem("duplicate", email, f"member id {member.get('id')} is not its hash")
            )


def compare_members(expectation: Expectation, members: Sequence[Mapping[str, Any]]) -> Report:
    """Check ``members`` (as the Mailchimp API renders them, archived included) against ``expectation``."""
    report = Report(expectation, members_in_audience=len(members))
    _check_identity(members, report)
    by_hash = {str(m.get("id")): m for m in members}
    owners: dict[str, str] = {}
    for h, claimants in expectation.claimants.items():
        member = by_hash.get(h)
        if member is None:
            who = claimants[0]
            others = f" (or any of {[c.customer for c in claimants]})" if len(claimants) > 1 else ""
            report.problems.append(Problem("missing", who.email, "no member" + others, who.customer))
            continue
        report.members_compared += 1
        attempts = [(c, member_problems(c, member)) for c in claimants]
        owner, diffs = min(attempts, key=lambda a: len(a[1]))
        owners[h] = owner.customer
        if diffs:
            report.problems.append(Problem("fields", owner.email, "; ".join(diffs), owner.customer))
        else:
            report.matched += 1
    for customer, want in expectation.departed.items():
        member = by_hash.get(want.subscriber_hash)
        if want.subscriber_hash in expectation.claimants:
            continue  # another customer claims the address now: its expectation applies
        if member is None:
            report.problems.append(
                Problem("missing", want.email, "deleted customer's member is gone", customer)
            )
            continue
        report.members_compared += 1
        owners[want.subscriber_hash] = customer
        diffs = member_problems(want, member)
        if diffs:
            report.problems.append(Problem("departed", want.email, "; ".join(diffs), customer))
        else:
            report.matched += 1
    allowed = ACTION_STATUS.get(expectation.inactive_action)
    for customer, held in expectation.excluded.items():
        if held is None or held in owners:
            continue
        member = by_hash.get(held)
        if member is None:
            continue
        report.members_compared += 1
        owners[held] = customer
        if member.get("status") != allowed:
            report.problems.append(
                Problem(
                    "inactive",
                    str(member.get("email_address")),
                    f"inactive customer's member is {member.get('status')}, want {allowed} or no member",
                    customer,
                )
            )
        else:
            report.matched += 1
    for h, member in by_hash.items():
        if h not in owners:
            report.problems.append(
                Problem(
                    "unexpected",
                    str(member.get("email_address")),
                    f"member ({member.get('status')}) that no SYSPRO customer calls for",
                )
            )
    for h in expectation.opted_out:
        member = by_hash.get(h)
        if member is not None and member.get("status") != "unsubscribed":
            report.problems.append(
                Problem(
                    "resubscribed",
                    str(member.get("email_address")),
                    f"the contact unsubscribed, the member is {member.get('status')}",
                    owners.get(h),
                )
            )
    return report
