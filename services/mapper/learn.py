"""What the mapper learns from the loader's results (``MemberSynced`` / ``MemberSyncFailed``).

Mailchimp is the authority on a member's status: a contact who unsubscribed, bounced (``cleaned``),
is under compliance review, or was permanently deleted must never be subscribed again by us. The loader
reports these; this module turns them into ``terminal=True`` in the customer's ``MemberState`` so that
``decide`` never issues a command that could re-subscribe the member, across restarts (the state is a
compacted topic).

The state's address is the one the mapper last *commanded*: results lag behind commands (the mapper may
have issued a rename the loader has not applied yet), so a result only confirms the address and status
when it is about the address in state; a terminal status is recorded whatever the address, because a
renamed member is still the same contact.
"""

from __future__ import annotations

from dataclasses import replace

from services.mapper.records import AudienceMemory, CustomerMemory
from shared.events import MemberSynced, MemberSyncFailed

__all__ = ["FORGOTTEN_REASONS", "TERMINAL_REASONS", "TERMINAL_STATUSES", "learn"]

TERMINAL_STATUSES = frozenset({"unsubscribed", "cleaned"})
"""``mailchimp_status`` values after which the member is never subscribed again."""

FORGOTTEN_REASONS = frozenset(
    {"forgotten", "forgotten_email", "forgotten_email_not_subscribed", "permanently_deleted"}
)
"""``MemberSyncFailed.reason`` values for a permanently deleted contact (Mailchimp: "Forgotten Email Not
Subscribed"); no command can bring it back, so the mapper stops sending any but archive/unsubscribe."""

TERMINAL_REASONS = FORGOTTEN_REASONS | {
    "compliance_state",
    "member_in_compliance_state",
    "unsubscribed",
    "cleaned",
    "member_cleaned",
}
"""``MemberSyncFailed.reason`` values that make a member terminal (Mailchimp: "Member In Compliance
State", "Forgotten Email Not Subscribed", updates refused on a cleaned member)."""


def learn(memory: CustomerMemory | None, result: MemberSynced | MemberSyncFailed) -> CustomerMemory | None:
    """The customer's members after ``result``, or None when the result teaches nothing new."""
    st = memory.get(result.audience_id) if memory is not None else None
    same = st is not None and st.subscriber_hash == result.subscriber_hash
    new: AudienceMemory | None
    if isinstance(result, MemberSynced):
        status: str | None = result.mailchimp_status
        terminal = status in TERMINAL_STATUSES
        if st is None:
            new = AudienceMemory(
                result.email_address,
                result.subscriber_hash,
                status,
                archived=result.outcome == "archived",
                terminal=terminal,
            )
        elif same:
            new = replace(
                st,
                email_address=result.email_address,
                mailchimp_status=status,
                terminal=st.terminal or terminal,
            )
        else:
            new = replace(st, terminal=True) if terminal else st
    else:
        status = "forgotten" if result.reason in FORGOTTEN_REASONS else result.mailchimp_status
        terminal = result.reason in TERMINAL_REASONS or status in TERMINAL_STATUSES
        if st is None:
            new = (
                AudienceMemory(result.email_address, result.subscriber_hash, status, terminal=True)
                if terminal
                else None
            )
        elif same:
            new = replace(
                st, terminal=st.terminal or terminal, mailchimp_status=status or st.mailchimp_status
            )
        else:
            new = replace(st, terminal=True) if terminal else st
    if new is None or new == st:
        return None
    after = dict(memory) if memory is not None else {}
    after[result.audience_id] = new
    return after
