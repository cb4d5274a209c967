"""What a Mailchimp audience must look like, given SYSPRO's rows and the audience's policy.

The policy's definition is the mapper's pure decision (``services.mapper.decide``): each row is decided
on its own, as if no other customer existed, which gives the member that customer wants (or its
rejection). Only the duplicate-email rule depends on more than one row, and on the order the mapper
happened to see them in (partitions are processed concurrently), so an address claimed by several
customers is expected to belong to *any one* of them; the others are expected rejected.

``compare`` then checks the audience against it (``expectations_report``) and returns a ``Report``
that counts what it compared and lists the differences readably.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from services.mapper.decide import CustomerInput, decide
from services.mapper.email_identity import EmailIdentity, read_email, subscriber_hash
from services.mapper.member_mapping import MemberMapper
from services.mapper.plan import AudiencePlan, ConnectionPlan
from services.mapper.status_policy import StatusRules
from shared.connections import Audience, ConnectionsConfig
from simulators.expectations_report import ACTION_STATUS, Problem, Report, compare_members, member_problems

if TYPE_CHECKING:
    from simulators.stack import LocalStack

__all__ = [
    "Expectation",
    "ExpectedMember",
    "Problem",
    "Report",
    "compare",
    "compare_members",
    "expect",
    "member_problems",
    "stack_audience",
]


@dataclass(frozen=True)
class ExpectedMember:
    """The member one customer's row asks for."""

    customer: str
    email: str
    subscriber_hash: str
    merge_fields: Mapping[str, Any]
    tags: frozenset[str]
    status: str
    #: Status tags are added to the member's existing tags: only these must be present, others may be.
    tags_at_least: bool = False


@dataclass
class Expectation:
    """The audience the policy calls for, before looking at Mailchimp."""

    #: Members by subscriber hash; several entries are several claimants of one address.
    claimants: dict[str, list[ExpectedMember]] = field(default_factory=dict)
    #: Customers the policy rejects alone (bad email, ...) -> reason.
    rejected: dict[str, str] = field(default_factory=dict)
    #: Inactive customers not added (archive/unsubscribe action) -> their address hash, if valid.
    excluded: dict[str, str | None] = field(default_factory=dict)
    #: Customers deleted from SYSPRO whose member must show the policy's action.
    departed: dict[str, ExpectedMember] = field(default_factory=dict)
    #: Subscriber hashes of contacts who opted out: never subscribed again.
    opted_out: frozenset[str] = frozenset()
    inactive_action: str = "tag"

    @property
    def duplicates(self) -> dict[str, list[str]]:
        """Addresses claimed by more than one customer -> the claimants."""
        return {h: [m.customer for m in ms] for h, ms in self.claimants.items() if len(ms) > 1}

    @property
    def expected_members(self) -> int:
        return len(self.claimants)

    @property
    def rejections_expected(self) -> int:
        """Rejected customers, each losing claimant of a duplicated address included."""
        return len(self.rejected) + sum(len(ms) - 1 for ms in self.claimants.values())


def _plan(audience: Audience) -> ConnectionPlan:
    return ConnectionPlan(
        "expect", (AudiencePlan(audience, MemberMapper(audience), StatusRules(audience.policy)),)
    )


def _nobody(audience_id: str, subscriber_hash: str) -> str | None:
    return None


def _alone(plan: ConnectionPlan, customer: str, row: Mapping[str, Any], today: date) -> Any:
    inp = CustomerInput("expect", customer, "updated", dict(row), None, uuid.UUID(int=0))
    return decide(inp, None, _nobody, plan, today)


def expect(
    rows: Iterable[Mapping[str, Any]],
    audience: Audience,
    *,
    departed: Mapping[str, Mapping[str, Any]] | None = None,
    opted_out: Iterable[str] = (),
    today: date | None = None,
) -> Expectation:
    """The expected audience for ``rows`` (SYSPRO as it is now) under ``audience``'s policy.

    ``departed`` holds the last row of customers deleted from SYSPRO after they were synced;
    ``opted_out`` the addresses whose contacts unsubscribed themselves in Mailchimp.
    """
    today = today or datetime.now(UTC).date()
    plan = _plan(audience)
    policy = audience.policy
    out = Expectation(
        opted_out=frozenset(subscriber_hash(e) for e in opted_out), inactive_action=policy.inactive_action
    )
    for row in rows:
        customer = str(row["Customer"]).strip()
        decision = _alone(plan, customer, row, today)
        command = next((c for c in decision.commands if c.action == "upsert"), None)
        if command is not None:
            status = "unsubscribed" if command.subscriber_hash in out.opted_out else command.status_if_new
            member = ExpectedMember(
                customer,
                command.email_address,
                command.subscriber_hash,
                dict(command.merge_fields),
                frozenset(t.casefold() for t in command.tags_add),
                status,
            )
            out.claimants.setdefault(command.subscriber_hash, []).append(member)
            continue
        rejection = decision.rejections[0] if decision.rejections else None
        if rejection is not None and rejection.reason == "excluded_by_policy":
            identity = read_email(row, audience.email)
            out.excluded[customer] = identity.subscriber_hash if isinstance(identity, EmailIdentity) else None
        elif rejection is not None:
            out.rejected[customer] = rejection.reason
    for customer, row in (departed or {}).items():
        decision = _alone(plan, customer, row, today)
        command = next((c for c in decision.commands if c.action == "upsert"), None)
        if command is None:
            continue
        action = policy.inactive_action
        tags = frozenset(t.casefold() for t in command.tags_add)
        opted = command.subscriber_hash in out.opted_out
        status = ACTION_STATUS.get(action) or ("unsubscribed" if opted else command.status_if_new)
        out.departed[customer] = ExpectedMember(
            customer,
            command.email_address,
            command.subscriber_hash,
            dict(command.merge_fields),
            tags | {policy.inactive_tag.casefold()} if action == "tag" else tags,
            status,
            tags_at_least=action != "tag",
        )
    return out


def stack_audience(stack: LocalStack) -> Audience:
    """The audience a ``LocalStack`` configures (its connections file, validated as the services do)."""
    config = ConnectionsConfig.model_validate(stack.connections())
    return config.get(stack.options.connection_id).audience(stack.options.audience_id)


def compare(
    source: LocalStack | tuple[Iterable[Mapping[str, Any]], Sequence[Mapping[str, Any]]],
    audience: Audience | None = None,
    *,
    departed: Mapping[str, Mapping[str, Any]] | None = None,
    opted_out: Iterable[str] = (),
    today: date | None = None,
) -> Report:
    """Compare the Mailchimp audience with SYSPRO under the policy.

    ``source`` is a running ``LocalStack`` (its SYSPRO rows, Mailchimp members and audience) or a pair
    ``(rows, members)``, then with ``audience`` given.
    """
    members: Sequence[Mapping[str, Any]]
    if isinstance(source, tuple):
        rows, members = source
        if audience is None:
            raise ValueError("compare((rows, members), audience): the audience is needed")
    else:
        rows, members = source.syspro.rows(), source.members()
        audience = audience or stack_audience(source)
    expectation = expect(rows, audience, departed=departed, opted_out=opted_out, today=today)
    return compare_members(expectation, list(members))
