"""Resetting the loader's group to a time re-applies the commands since then: no duplicate member, and
a contact who unsubscribed stays unsubscribed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from simulators.mailchimp import subscriber_hash
from tests.e2e.conftest import StartStack
from tests.e2e.support import cli, counters, synced_audience
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


async def test_loader_reset_to_a_time_reapplies_without_duplicates_or_resubscribes(
    start_stack: StartStack,
) -> None:
    before_sync = datetime.now(UTC) - timedelta(seconds=5)
    stack = await start_stack(customers=300)
    await synced_audience(stack)
    list_id = stack.options.list_id
    members = {m["id"]: m for m in stack.members()}
    opted_out = sorted(m["email_address"] for m in members.values())[0]
    stack.mailchimp.unsubscribe_by_contact(list_id, opted_out)

    assert stack.processes["loader"].terminate() == 0
    result = await cli(
        stack,
        "replay",
        "reset-offsets",
        "loader",
        "--to-datetime",
        before_sync.isoformat(),
        "--wait",
        "30",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["applied"] and not plan["members"]
    rewound = sum((p["current"] or 0) - p["target"] for p in plan["partitions"])
    assert rewound >= len(members), plan

    commands = (await counters(stack, "mapper"))["mlc_mapper_commands_total"]
    assert commands >= len(members)
    stack.start_service("loader")
    await stack.processes["loader"].wait_ready()

    seen: dict[str, float] = {}

    async def reapplied() -> dict[str, float] | None:
        seen.update(await counters(stack, "loader"))
        done = seen.get("mlc_loader_synced_total", 0) + seen.get("mlc_loader_failed_total", 0)
        return seen if done >= commands else None

    try:
        loader = await wait_for(reapplied, 60, 0.5, "the restarted loader to re-apply every command")
    except AssertionError:
        progress = {k: v for k, v in seen.items() if k.startswith(("mlc_loader_", "mlc_records_consumed"))}
        raise AssertionError(f"{commands} commands to re-apply; the loader's counters: {progress}") from None
    assert loader.get("mlc_loader_failed_total", 0) == 0

    after = {m["id"]: m for m in stack.members()}
    assert after.keys() == members.keys()
    assert after[subscriber_hash(opted_out)]["status"] == "unsubscribed"
    await synced_audience(stack, opted_out=[opted_out])
