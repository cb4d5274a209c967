"""SIGKILL of a real ``ml-connector run loader`` mid-batch loses no command and leaves Mailchimp as
the commands intend: the killed batch's results were never committed, so the restarted loader applies
it again (idempotent writes), and every command ends with exactly one committed result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.events import MailchimpMemberUpsert, MemberSynced
from shared.settings import KafkaSettings
from simulators._server import free_port
from tests.helpers import ServiceProcess, wait_for
from tests.loader.support import (
    LIST_ID,
    Result,
    command,
    produce_commands,
    results,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)

CUSTOMERS = 800


@dataclass
class Intended:
    email: str
    fname: str = ""
    tags: set[str] = field(default_factory=set)
    status: str = "subscribed"


def _workload() -> tuple[list[MailchimpMemberUpsert], dict[str, Intended]]:
    """Per customer: a creation, then for some an update with tag changes, a rename, an archive."""
    commands: list[MailchimpMemberUpsert] = []
    intended: dict[str, Intended] = {}
    for n in range(CUSTOMERS):
        customer, email = f"K{n}", f"k{n}@example.com"
        commands.append(command(customer, email, merge_fields={"FNAME": "v1"}, tags_add=["customer"]))
        intended[customer] = Intended(email, "v1", {"customer"})
    for n in range(0, CUSTOMERS, 3):
        customer = f"K{n}"
        state = intended[customer]
        commands.append(
            command(
                customer,
                state.email,
                merge_fields={"FNAME": "v2"},
                tags_add=["gold"],
                tags_remove=["customer"],
            )
        )
        state.fname, state.tags = "v2", {"gold"}
    for n in range(0, CUSTOMERS, 5):
        customer = f"K{n}"
        state = intended[customer]
        new_email = f"renamed{n}@example.com"
        commands.append(
            # Like the mapper's, a rename carries the member's whole state: its merge fields and tags.
            command(
                customer,
                new_email,
                previous_email=state.email,
                merge_fields={"FNAME": state.fname},
                tags_add=sorted(state.tags),
            )
        )
        state.email = new_email
    for n in range(0, CUSTOMERS, 7):
        customer = f"K{n}"
        commands.append(command(customer, intended[customer].email, action="archive"))
        intended[customer].status = "archived"
    return commands, intended


@pytest.mark.slow
async def test_sigkill_mid_batch_then_restart_applies_every_command_exactly_as_intended(
    kafka: KafkaSettings, service_env: dict[str, str], tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    commands, intended = _workload()
    with served_mailchimp(latency_ms={"member_put": 25, "batch_members": 600, "tags": 5}) as mc:
        env = {
            **service_env,
            **files.env(mc.api_base),
            "MLC_INSTANCE_ID": "loader-crash",
            "MLC_LOADER_MAX_BATCH": "400",
            "MLC_LOADER_BULK_MIN_MEMBERS": "50",
        }
        await produce_commands(kafka, commands)
        first = ServiceProcess("loader", env, free_port(), tmp_path / "loader-1.log").start()
        try:
            await first.wait_ready()

            async def some_committed() -> list[Result] | None:
                return await _results_between(kafka, 1, len(commands))

            early: list[Result] = await wait_for(
                some_committed,
                timeout=120,
                interval=0.3,
                message="some results committed",
            )
            await wait_for(
                lambda: mc.sim.stats.in_flight, timeout=30, interval=0.01, message="requests in flight"
            )
        finally:
            first.kill()
        committed_at_kill = len(await results(kafka))
        assert 0 < len(early) <= committed_at_kill < len(commands), first.logs()[-2000:]
        second = ServiceProcess("loader", env, free_port(), tmp_path / "loader-2.log").start()
        try:
            await second.wait_ready()
            found = await wait_for_results(kafka, len(commands), timeout=240)
        finally:
            assert second.terminate() == 0, second.logs()[-3000:]
        members = {m["email_address"]: m for m in mc.sim.members(LIST_ID)}
        assert mc.throttled() == 0
    assert sorted(str(r.causation_id) for r in found) == sorted(str(c.event_id) for c in commands)
    assert all(isinstance(r, MemberSynced) for r in found), [
        r for r in found if not isinstance(r, MemberSynced)
    ]
    for customer, state in intended.items():
        member = members.get(state.email)
        assert member is not None, customer
        assert member["status"] == state.status, (customer, member["status"])
        assert member["merge_fields"]["FNAME"] == state.fname, customer
        assert {t["name"] for t in member["tags"]} == state.tags, customer
    renamed_away = {f"k{n}@example.com" for n in range(0, CUSTOMERS, 5)}
    assert not renamed_away & set(members)
    assert len(members) == CUSTOMERS


async def _results_between(kafka: KafkaSettings, low: int, high: int) -> list[Result] | None:
    found = await results(kafka)
    assert len(found) < high, "the loader finished before it could be killed: make the workload slower"
    return found if len(found) >= low else None
