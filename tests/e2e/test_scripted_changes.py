"""The demo's scripted SYSPRO changes each reach Mailchimp as the policy says (policy: archive)."""

from __future__ import annotations

from typing import Any

import pytest

from simulators.demo_script import ChangeResult, apply_and_wait, plan_changes
from simulators.expectations import stack_audience
from simulators.stack import LocalStack
from tests.e2e.conftest import StartStack
from tests.e2e.support import synced_audience, timeline
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def _member(stack: LocalStack, email: str) -> dict[str, Any]:
    member = stack.mailchimp.member(stack.options.list_id, email)
    assert member is not None, f"no member {email}"
    return member


async def test_each_scripted_change_arrives_and_the_audience_still_matches(start_stack: StartStack) -> None:
    stack = await start_stack(customers=300, audience={"policy": {"inactive_action": "archive"}})
    await synced_audience(stack)
    members_before = len(stack.members())
    changes = {c.kind: c for c in plan_changes(stack, stack_audience(stack))}
    assert set(changes) == {"new", "rename", "address", "hold", "delete", "fix_email"}

    # The invalid email is rejected with the field named before anyone fixes it.
    fix = changes["fix_email"]

    async def rejected() -> list[tuple[str, str]]:
        entries = await timeline(stack, fix.customer)
        return [
            (e["reason"], e["payload"]["field"]) for e in entries if e["event_type"] == "CustomerRejected"
        ]

    assert await wait_for(rejected, 30, 0.5, "the audit to record the rejection") == [
        ("invalid_email", "Email")
    ]

    results: dict[str, ChangeResult] = {}
    for kind, change in changes.items():
        results[kind] = await apply_and_wait(change, timeout=45)
        assert results[kind].arrived, f"{change.title}: {results[kind].last_problem}"

    new = _member(stack, changes["new"].email)
    assert (new["merge_fields"]["FNAME"], new["merge_fields"]["LNAME"]) == ("Ana", "Lima")
    assert new["merge_fields"]["ADDRESS"]["addr1"] == "310 Ridgeline Ave"
    assert new["status"] == "subscribed"

    rename = changes["rename"]
    assert stack.mailchimp.member(stack.options.list_id, rename.facts["old_email"]) is None
    assert _member(stack, rename.email)["unique_email_id"] == rename.facts["unique_email_id"]

    address = _member(stack, changes["address"].email)["merge_fields"]["ADDRESS"]
    assert (address["addr1"], address["addr2"]) == ("88 Harbour View Rd", "Unit 4")

    assert _member(stack, changes["hold"].email)["status"] == "archived"
    assert _member(stack, changes["delete"].email)["status"] == "archived"
    assert _member(stack, fix.email)["status"] == "subscribed"

    async def rejected_then_synced() -> list[str] | None:
        kinds = [e["event_type"] for e in await timeline(stack, fix.customer)]
        outcome = [k for k in kinds if k in ("CustomerRejected", "MemberSynced")]
        return outcome if outcome == ["CustomerRejected", "MemberSynced"] else None

    await wait_for(rejected_then_synced, 30, 0.5, "the audit timeline to show the rejection, then the sync")

    # Renamed in place and archived, never duplicated or dropped: one new member each for the new
    # customer and the fixed email.
    assert len(stack.members()) == members_before + 2
    departed = {changes["delete"].customer: changes["delete"].departed_row or {}}
    await synced_audience(stack, departed=departed)
