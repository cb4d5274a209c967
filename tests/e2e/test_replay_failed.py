"""A command Mailchimp refused permanently is re-emitted by `ml-connector replay --failed` and lands."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simulators.expectations import expect, member_problems, stack_audience
from simulators.mailchimp import FakeEmailPatterns
from tests.e2e.conftest import StartStack
from tests.e2e.support import audit_get, cli, synced_audience
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

EMAIL = "ops.team@blue-ridge-supply.example.com"
ROW = {
    "Customer": "900001",
    "Name": "Blue Ridge Supply Co",
    "Contact": "Maya Okafor",
    "Email": EMAIL,
    "Branch": "14",
    "CustomerOnHold": "N",
    "CreditStatus": "0",
    "SoldToAddr1": "12 Quarry Rd",
    "SoldToAddr3": "Asheville",
    "SoldToAddr4": "North Carolina",
    "SoldPostalCode": "28801",
    "Nationality": "USA",
}


async def test_failed_member_is_replayed_once_mailchimp_accepts_it(start_stack: StartStack) -> None:
    stack = await start_stack(customers=300)
    await synced_audience(stack)
    list_id = stack.options.list_id
    # Mailchimp refuses this address as fake: a permanent 400 for the loader.
    stack.mailchimp.config.fake_email_patterns = FakeEmailPatterns(addresses=[EMAIL])
    stack.syspro.create(ROW)

    async def failed() -> dict[str, Any] | None:
        page = await audit_get(stack, "/status", customer=ROW["Customer"])
        states = [s for s in page["items"] if s["status"] == "failed"]
        return states[0] if states else None

    state = await wait_for(failed, 45, 0.5, "the audit to record the failed sync")
    assert state["reason"] == "fake_email"
    assert stack.mailchimp.member(list_id, EMAIL) is None

    stack.mailchimp.config.fake_email_patterns = FakeEmailPatterns()
    result = await cli(stack, "replay", "--failed", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["produced"] == 1
    assert [(c["customer"], c["reason"]) for c in report["commands"]] == [(ROW["Customer"], "fake_email")]

    [want] = expect([ROW], stack_audience(stack)).claimants.values()

    def landed() -> bool:
        member = stack.mailchimp.member(list_id, EMAIL)
        return member is not None and not member_problems(want[0], member)

    await wait_for(landed, 45, 0.2, "the replayed member in Mailchimp")

    async def in_sync() -> bool:
        page = await audit_get(stack, "/status", customer=ROW["Customer"])
        return [s["status"] for s in page["items"]] == ["in_sync"]

    await wait_for(in_sync, 30, 0.5, "the audit to show the customer in sync")
    await synced_audience(stack)
