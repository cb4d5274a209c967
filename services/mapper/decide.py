"""The mapper's decision for one customer change: commands, rejections, and state to remember.

Pure: ``decide`` takes the change, the customer's remembered members, a read-only view of who owns which
address, and the prepared connection; it returns what to emit and what to remember, and touches nothing.
The shell applies the result (``pipeline``). The rules, per audience:

- the address is read and validated (``email_identity``); a problem is a rejection, and an address the
  customer held before is released so the next customer with it can take it;
- an address owned by another customer is a ``duplicate_email`` rejection and the customer waits for it
  (``first_owner``), or it is taken over and the displaced owner gets the rejection (``most_recent``);
- a changed address is a rename: the command carries ``previous_email``, the old address is released;
- inactive customers (``status_policy``) get the policy's action: status tags, archive or unsubscribe;
  a customer that is not a member yet is not added only to be archived or unsubscribed;
- a member Mailchimp reported unsubscribed, cleaned, in a compliance state or forgotten (``terminal``)
  is never sent a command that could create or un-archive it: either would apply ``status_if_new``;
- deleted customers get the inactive action on the member remembered in state.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from services.mapper.decision import CustomerInput, Decision, DecisionContext, OwnerLookup
from services.mapper.email_identity import EmailIdentity, EmailProblem, read_email
from services.mapper.plan import AudiencePlan, ConnectionPlan
from services.mapper.records import AudienceMemory, Claim, CustomerMemory

__all__ = ["CustomerInput", "Decision", "OwnerLookup", "decide"]

_NONE = AudienceMemory()
#: Statuses of a member that no longer exists: an upsert would create it again.
_GONE = frozenset({"forgotten", "absent"})


def _status_name(st: AudienceMemory) -> str:
    return st.mailchimp_status or "terminal"


def _inactive(
    ctx: DecisionContext, ap: AudiencePlan, st: AudienceMemory, held: bool, why: str
) -> AudienceMemory:
    """Archive or unsubscribe the member this customer holds; never add a member just to remove it."""
    action = ap.audience.policy.inactive_action
    if not held:
        ctx.reject(
            ap,
            "excluded_by_policy",
            f"inactive ({why}); inactive_action={action}: not added",
            email_field=False,
        )
        return st
    if action == "archive":
        if st.archived:
            ctx.reject(
                ap, "excluded_by_policy", f"inactive ({why}); member already archived", email_field=False
            )
            return st
        ctx.command(ap, st, action="archive", notes=(f"inactive: {why}",))
        return replace(st, archived=True)
    if st.terminal:
        ctx.reject(
            ap,
            "excluded_by_policy",
            f"inactive ({why}); member already {_status_name(st)}",
            email_field=False,
        )
        return st
    ctx.command(ap, st, action="unsubscribe", notes=(f"inactive: {why}",))
    return replace(st, terminal=True, mailchimp_status="unsubscribed")


def _invalid(
    ctx: DecisionContext, ap: AudiencePlan, st: AudienceMemory, held: bool, problem: EmailProblem
) -> AudienceMemory:
    detail = problem.detail
    if held and st.subscriber_hash is not None and not st.terminal:
        ctx.release(ap, st.subscriber_hash)
        detail += f"; address {st.email_address} released, its Mailchimp member left as it is"
        st = replace(st, email_address=None, subscriber_hash=None, archived=False, tags=())
    ctx.reject(ap, problem.reason, detail, value=problem.value)
    return st


def _changed(
    ctx: DecisionContext, ap: AudiencePlan, st: AudienceMemory, email: EmailIdentity | EmailProblem
) -> AudienceMemory:
    inp = ctx.inp
    held = ctx.holds(ap, st)
    if isinstance(email, EmailProblem):
        return _invalid(ctx, ap, st, held, email)
    owner = ctx.owner_of(ap.id, email.subscriber_hash)
    if owner is not None and owner != inp.customer:
        if ap.audience.email.duplicates == "first_owner":
            ctx.reject(
                ap,
                "duplicate_email",
                f"address already belongs to customer {owner}",
                value=email.address,
                owner=owner,
            )
            ctx.decision.waiting.append(Claim(ap.id, email.subscriber_hash))
            return st
        ctx.reject(
            ap,
            "duplicate_email",
            f"address taken by {inp.customer} (duplicates=most_recent)",
            value=email.address,
            owner=inp.customer,
            customer=owner,
        )
    activity = ap.rules.evaluate(inp.row, ctx.today)
    if not activity.active and ap.audience.policy.inactive_action != "tag":
        return _inactive(ctx, ap, st, held, ", ".join(activity.reasons))
    if st.terminal and (not held or st.archived or st.mailchimp_status in _GONE):
        ctx.reject(
            ap,
            "excluded_by_policy",
            f"member is {_status_name(st)} in Mailchimp: never re-created or re-subscribed",
            email_field=False,
        )
        return st
    fields = ap.mapper.map(inp.row)
    tags_now = fields.tags + activity.inactive_tags if not activity.active else fields.tags
    if activity.overdue_tag:
        tags_now += (activity.overdue_tag,)
    renaming = held and st.subscriber_hash != email.subscriber_hash
    previous = set(st.tags) if held else set()
    removed = previous.difference(tags_now)
    if ctx.wake:
        # The address may carry a previous owner's status tags.
        removed |= ap.rules.status_tags.difference(tags_now)
    notes = fields.notes
    if st.terminal:
        notes += (f"member is {_status_name(st)} in Mailchimp: update only, never subscribe",)
    ctx.command(
        ap,
        st,
        action="upsert",
        email=email.address,
        subscriber_hash=email.subscriber_hash,
        previous_email=st.email_address if renaming else None,
        merge_fields=fields.merge_fields,
        tags_add=tags_now,
        tags_remove=tuple(sorted(removed)),
        notes=notes,
    )
    if owner != inp.customer:
        ctx.decision.claims.append(Claim(ap.id, email.subscriber_hash))
    if renaming and st.subscriber_hash is not None:
        ctx.release(ap, st.subscriber_hash)
    return AudienceMemory(
        email.address,
        email.subscriber_hash,
        st.mailchimp_status if held else None,
        False,
        st.terminal,
        tags_now,
    )


def _deleted(ctx: DecisionContext, ap: AudiencePlan, st: AudienceMemory) -> AudienceMemory:
    if not ctx.holds(ap, st) or st.subscriber_hash is None:
        return st
    policy = ap.audience.policy
    notes = ("customer deleted in SYSPRO",)
    new = st
    if policy.inactive_action == "tag":
        if not (st.terminal and st.archived):
            ctx.command(ap, st, action="upsert", tags_add=(policy.inactive_tag,), notes=notes)
            if policy.inactive_tag not in st.tags:
                new = replace(st, tags=(*st.tags, policy.inactive_tag))
    elif policy.inactive_action == "archive":
        if not st.archived:
            ctx.command(ap, st, action="archive", notes=notes)
            new = replace(st, archived=True)
    elif not st.terminal:
        ctx.command(ap, st, action="unsubscribe", notes=notes)
        new = replace(st, terminal=True, mailchimp_status="unsubscribed")
    if not new.terminal:
        # A terminal member's address stays owned: another customer's upsert could revive it.
        ctx.release(ap, st.subscriber_hash)
    return new


def decide(
    inp: CustomerInput,
    memory: CustomerMemory | None,
    owner_of: OwnerLookup,
    plan: ConnectionPlan,
    today: date,
    *,
    only: frozenset[str] | None = None,
    wake: bool = False,
) -> Decision:
    """Commands, rejections and state changes for one customer change.

    ``only`` limits the decision to some audiences; ``wake`` marks the re-run of a waiting customer
    whose address was just freed (status tags a previous owner may have set are removed).
    """
    ctx = DecisionContext(inp, owner_of, today, wake)
    before = memory or {}
    after: CustomerMemory | None = None
    emails: dict[tuple[str, str], EmailIdentity | EmailProblem] = {}
    for ap in plan.audiences:
        if only is not None and ap.id not in only:
            continue
        prior = before.get(ap.id)
        if inp.change == "deleted":
            if prior is None:
                continue
            new = _deleted(ctx, ap, prior)
        else:
            rules = ap.audience.email
            email = emails.get((rules.column, rules.multiple))
            if email is None:
                email = emails[(rules.column, rules.multiple)] = read_email(inp.row, rules)
            new = _changed(ctx, ap, prior or _NONE, email)
            if prior is None and new == _NONE:
                continue
        if new != prior:
            if after is None:
                after = dict(before)
            after[ap.id] = new
    ctx.decision.memory = after
    return ctx.decision
