"""The demo's scripted SYSPRO changes, each with the Mailchimp state that shows it has arrived.

Six changes a distributor makes every week: a new customer, an email change, an address change, a
customer put on hold, a deleted customer and a fixed invalid email. Each is applied to the SYSPRO
simulator in-process; its ``arrived`` check reads the Mailchimp simulator, also in-process, and asks
the expectations module what the customer's member must look like under the audience's policy, so the
demo and the end-to-end tests wait for the same, policy-defined state. The delay is measured from the
SYSPRO write to the first moment the member looks right.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.mapper.email_identity import EmailProblem, read_email, subscriber_hash
from shared.connections import Audience
from simulators.expectations import Expectation, ExpectedMember, expect, member_problems

if TYPE_CHECKING:
    from simulators.stack import LocalStack

__all__ = ["KINDS", "ChangeResult", "ScriptedChange", "apply_and_wait", "plan_changes"]

KINDS = ("new", "rename", "address", "hold", "delete", "fix_email")
_ACTION_STATUS = {"archive": "archived", "unsubscribe": "unsubscribed"}


@dataclass
class ScriptedChange:
    """One SYSPRO change and how to tell it reached Mailchimp."""

    kind: str
    title: str
    customer: str
    description: str
    apply: Callable[[], None]
    #: Why the member does not look right yet ("" once it does).
    pending: Callable[[], str]
    #: The member's address once the change has arrived.
    email: str = ""
    #: Last row of a customer the change deletes (for the final comparison).
    departed_row: dict[str, Any] | None = None
    #: The rejection the audit holds before the change (``fix_email``): reason and offending value.
    before: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChangeResult:
    change: ScriptedChange
    #: Seconds from the SYSPRO write to the member looking right; None when it never did.
    delay: float | None
    last_problem: str = ""

    @property
    def arrived(self) -> bool:
        return self.delay is not None


def _expected(row: Mapping[str, Any], audience: Audience) -> ExpectedMember | None:
    found = expect([row], audience).claimants
    return next(iter(found.values()))[0] if found else None


class _Planner:
    """Picks distinct, representative customers and builds the six changes."""

    def __init__(self, stack: LocalStack, audience: Audience, seed: int) -> None:
        self.stack = stack
        self.audience = audience
        self.list_id = audience.list_id
        self.rng = random.Random(seed)
        self.rows = {str(r["Customer"]).strip(): r for r in stack.syspro.rows()}
        self.expectation: Expectation = expect(self.rows.values(), audience)
        self.used: set[str] = set()
        members = {str(m["id"]): m for m in stack.members()}
        self.settled: list[ExpectedMember] = sorted(
            (
                ms[0]
                for h, ms in self.expectation.claimants.items()
                if len(ms) == 1 and h in members and not member_problems(ms[0], members[h])
            ),
            key=lambda m: m.customer,
        )

    def member(self, email_or_hash: str) -> dict[str, Any] | None:
        return self.stack.mailchimp.member(self.list_id, email_or_hash)

    def pick(self, accept: Callable[[ExpectedMember], bool]) -> ExpectedMember:
        candidates = [m for m in self.settled if m.customer not in self.used and accept(m)]
        if not candidates:
            raise RuntimeError("no customer in the generated company fits this scripted change")
        chosen = self.rng.choice(candidates)
        self.used.add(chosen.customer)
        return chosen

    def free_address(self, local: str, domain: str) -> str:
        n = 0
        while True:
            email = f"{local}{n or ''}@{domain}"
            if self.member(email) is None and subscriber_hash(email) not in self.expectation.claimants:
                return email
            n += 1

    def looks(self, email: str, row: Mapping[str, Any]) -> Callable[[], str]:
        """The member at ``email`` must be what the policy makes of ``row``."""

        def pending() -> str:
            want = _expected(row, self.audience)
            if want is None:
                return "the policy makes no member of this row"
            member = self.member(email)
            if member is None:
                return f"no member {email} yet"
            return "; ".join(member_problems(want, member))

        return pending

    # ----- the six changes ---------------------------------------------------------------------------

    def new_customer(self) -> ScriptedChange:
        code = f"{max(int(c) for c in self.rows if c.isdigit()) + 1:06d}"
        email = self.free_address("ana.lima", f"summit-trail-{code}.example.com")
        row = {
            "Customer": code,
            "Name": "Summit Trail Outfitters",
            "Contact": "Ana Lima",
            "Email": email,
            "Telephone": "(503) 555-0142",
            "Branch": "12",
            "CustomerOnHold": "N",
            "CreditStatus": "0",
            "SoldToAddr1": "310 Ridgeline Ave",
            "SoldToAddr3": "Portland",
            "SoldToAddr4": "Oregon",
            "SoldToAddr5": "United States",
            "SoldPostalCode": "97205",
            "Nationality": "USA",
        }

        def apply() -> None:
            self.stack.syspro.create(row)

        return ScriptedChange(
            "new",
            "new customer",
            code,
            f"{code} Summit Trail Outfitters, Ana Lima <{email}>",
            apply,
            lambda: self.looks(email, self.stack.syspro.get(code) or row)(),
            email=email,
        )

    def email_change(self) -> ScriptedChange:
        chosen = self.pick(lambda m: True)
        old = chosen.email
        email = self.free_address("orders.desk", old.rpartition("@")[2])
        code = chosen.customer
        before = self.member(old) or {}
        unique_id = before.get("unique_email_id")

        def apply() -> None:
            self.stack.syspro.update(code, Email=email)

        def pending() -> str:
            problem = self.looks(email, self.stack.syspro.get(code) or {})()
            if problem:
                return problem
            if self.member(old) is not None:
                return f"the old member {old} still exists (a duplicate)"
            member = self.member(email) or {}
            if member.get("unique_email_id") != unique_id:
                return "a new member was created instead of renaming the existing one"
            return ""

        return ScriptedChange(
            "rename",
            "email change",
            code,
            f"{code}: {old} -> {email}",
            apply,
            pending,
            email=email,
            facts={"old_email": old, "unique_email_id": unique_id},
        )

    def address_change(self) -> ScriptedChange:
        chosen = self.pick(lambda m: isinstance(m.merge_fields.get("ADDRESS"), Mapping))
        code = chosen.customer
        old = chosen.merge_fields["ADDRESS"]
        changes = {"SoldToAddr1": "88 Harbour View Rd", "SoldToAddr2": "Unit 4"}

        def apply() -> None:
            self.stack.syspro.update(code, **changes)

        return ScriptedChange(
            "address",
            "address change",
            code,
            f"{code} <{chosen.email}>: {old.get('addr1')!r} -> '88 Harbour View Rd, Unit 4'",
            apply,
            lambda: self.looks(chosen.email, self.stack.syspro.get(code) or {})(),
            email=chosen.email,
        )

    def put_on_hold(self) -> ScriptedChange:
        policy = self.audience.policy
        status_tags = {policy.on_hold_tag.casefold(), policy.inactive_tag.casefold()}
        chosen = self.pick(lambda m: not (m.tags & status_tags))
        code = chosen.customer
        action = policy.inactive_action

        def apply() -> None:
            self.stack.syspro.update(code, CustomerOnHold="Y")

        if action == "tag":
            pending = self.looks(chosen.email, {**self.rows[code], "CustomerOnHold": "Y"})
            shows = f"tag {policy.on_hold_tag!r}"
        else:
            pending = self._status_is(chosen.email, _ACTION_STATUS[action])
            shows = f"member {_ACTION_STATUS[action]}"
        return ScriptedChange(
            "hold",
            "customer put on hold",
            code,
            f"{code} <{chosen.email}>: CustomerOnHold N -> Y (policy: {action}, expect {shows})",
            apply,
            pending,
            email=chosen.email,
        )

    def _status_is(self, email: str, status: str) -> Callable[[], str]:
        def pending() -> str:
            member = self.member(email)
            if member is None:
                return f"no member {email}"
            return "" if member.get("status") == status else f"status is {member.get('status')}"

        return pending

    def delete_customer(self) -> ScriptedChange:
        chosen = self.pick(lambda m: True)
        code = chosen.customer
        last = dict(self.rows[code])
        want = expect([], self.audience, departed={code: last}).departed[code]

        def apply() -> None:
            self.stack.syspro.delete(code)

        def pending() -> str:
            member = self.member(chosen.email)
            if member is None:
                return f"no member {chosen.email}"
            return "; ".join(member_problems(want, member))

        action = self.audience.policy.inactive_action
        return ScriptedChange(
            "delete",
            "deleted customer",
            code,
            f"{code} <{chosen.email}> deleted in SYSPRO (policy: {action})",
            apply,
            pending,
            email=chosen.email,
            departed_row=last,
        )

    def fix_invalid_email(self) -> ScriptedChange:
        """A customer whose Email was rejected as invalid gets a good address typed in."""
        rules = self.audience.email
        dirty = sorted(
            code
            for code, reason in self.expectation.rejected.items()
            if reason == "invalid_email" and code not in self.used
        )
        fixable = [
            c
            for c in dirty
            if _expected({**self.rows[c], rules.column: "probe@fixed.example.com"}, self.audience) is not None
        ]
        if not fixable:
            raise RuntimeError("the generated company has no fixable invalid email")
        code = self.rng.choice(fixable)
        self.used.add(code)
        problem = read_email(self.rows[code], rules)
        value = problem.value if isinstance(problem, EmailProblem) else ""
        email = self.free_address("accounts", f"customer{code}.example.com")

        def apply() -> None:
            self.stack.syspro.update(code, **{rules.column: email})

        return ScriptedChange(
            "fix_email",
            "fixed invalid email",
            code,
            f"{code}: {rules.column} {value!r} -> {email}",
            apply,
            lambda: self.looks(email, self.stack.syspro.get(code) or {})(),
            email=email,
            before=f"rejected: invalid_email (field {rules.column}, value {value!r})",
            facts={"invalid_value": value},
        )


def plan_changes(stack: LocalStack, audience: Audience, seed: int = 7) -> list[ScriptedChange]:
    """The six changes, on distinct customers whose members are in sync now (call after the sync)."""
    planner = _Planner(stack, audience, seed)
    return [
        planner.new_customer(),
        planner.email_change(),
        planner.address_change(),
        planner.put_on_hold(),
        planner.delete_customer(),
        planner.fix_invalid_email(),
    ]


async def apply_and_wait(change: ScriptedChange, timeout: float, poll: float = 0.05) -> ChangeResult:
    """Apply the change to SYSPRO and wait until Mailchimp shows it; the delay counts from the write."""
    change.apply()
    started = time.monotonic()
    deadline = started + timeout
    problem = change.pending()
    while problem:
        if time.monotonic() > deadline:
            return ChangeResult(change, None, problem)
        await asyncio.sleep(poll)
        problem = change.pending()
    return ChangeResult(change, time.monotonic() - started)
