"""A generated company's first sync, checked against the policy, the audit and a clean shutdown."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import StartStack
from tests.e2e.support import audit_get, counters, synced_audience
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

CUSTOMERS = 500


async def test_generated_company_reaches_mailchimp_as_the_policy_says(start_stack: StartStack) -> None:
    stack = await start_stack(customers=CUSTOMERS)

    report = await synced_audience(stack)

    expectation = report.expectation
    members = stack.members()
    assert report.members_compared == len(members) == expectation.expected_members
    # The generated company is dirty on purpose: some customers must be refused, some share an address.
    assert expectation.rejected and expectation.duplicates
    assert len(expectation.rejected) + sum(len(c) for c in expectation.claimants.values()) == CUSTOMERS

    async def reconciled() -> dict[str, Any] | None:
        [audience] = await audit_get(stack, "/reconcile")
        done = audience["customers_seen"] == CUSTOMERS and audience["members_synced"] == len(members)
        return audience if done else None

    audience = await wait_for(reconciled, 60, 0.5, "the audit to see every customer and member")
    assert audience["extra_count"] == 0
    assert audience["mismatched_count"] == 0
    assert audience["missing_count"] == expectation.rejections_expected
    assert audience["missing_by_status"] == {"rejected": expectation.rejections_expected}

    loader = await counters(stack, "loader")
    assert loader["mlc_loader_synced_total"] == len(members)
    assert loader.get("mlc_loader_failed_total", 0) == 0
    # Every synced member's freshness (change seen -> Mailchimp result) was measured.
    assert loader["mlc_loader_freshness_seconds_count"] == len(members)
    assert 0 < loader["mlc_loader_freshness_seconds_sum"] / len(members) < 60

    codes = stack.stop()
    assert codes == {"poller": 0, "mapper": 0, "loader": 0, "audit": 0}
