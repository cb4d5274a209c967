"""A creation followed, in the same batch, by a rename away from the created address: the loader
creates the member only at the new address. This is what makes re-applying both after a crash safe:
the rename already moved the member in Mailchimp, and creating the old address again would leave a
member that no customer calls for (the audience check of the reliability suite caught it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.events import MailchimpMemberUpsert, MemberSynced
from shared.settings import KafkaSettings
from tests.helpers import running
from tests.loader.support import (
    LIST_ID,
    Result,
    command,
    loader_service,
    produce_commands,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)

RENAMED = 60
PLAIN = 60


def _commands() -> list[MailchimpMemberUpsert]:
    creations = [
        command(f"R{n}", f"first{n}@example.com", merge_fields={"FNAME": f"R{n}"}, tags_add=["customer"])
        for n in range(RENAMED)
    ]
    plain = [
        command(f"P{n}", f"plain{n}@example.com", merge_fields={"FNAME": f"P{n}"}, tags_add=["customer"])
        for n in range(PLAIN)
    ]
    renames = [
        command(
            f"R{n}",
            f"second{n}@example.com",
            previous_email=f"first{n}@example.com",
            merge_fields={"FNAME": f"R{n}"},
            tags_add=["customer"],
        )
        for n in range(RENAMED)
    ]
    return creations + plain + renames


async def _run(
    kafka: KafkaSettings, tmp_path: Path, *, seeded: bool
) -> tuple[dict[str, Any], dict[str, tuple[MailchimpMemberUpsert, Result]]]:
    files = write_loader_files(tmp_path)
    commands = _commands()
    with served_mailchimp(latency_ms={"member_put": 5, "batch_members": 50}) as mc:
        if seeded:
            # What Mailchimp holds when a loader died after applying both commands, before committing:
            # the member already moved to its second address.
            for n in range(RENAMED):
                mc.sim.seed_member(
                    LIST_ID,
                    f"second{n}@example.com",
                    status="subscribed",
                    merge_fields={"FNAME": f"R{n}"},
                    tags=["customer"],
                )
        await produce_commands(kafka, commands)
        # A customer's commands share a partition, so a fetch brings its creation and rename together,
        # as the first fetch after a restart does. Batch subscribe is offered for every batch (threshold
        # 1): the creations renamed later must stay out of it.
        service = loader_service(kafka, files, mc.api_base, max_batch=len(commands) * 2, bulk_min_members=1)
        async with running(service):
            found = await wait_for_results(kafka, len(commands), timeout=120)
        members = {m["email_address"]: m for m in mc.sim.members(LIST_ID)}
        assert mc.throttled() == 0
    by_command = {str(r.causation_id): r for r in found}
    return members, {str(c.event_id): (c, by_command[str(c.event_id)]) for c in commands}


async def test_a_creation_renamed_in_the_same_batch_creates_only_the_new_address(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    members, results = await _run(kafka, tmp_path, seeded=False)
    assert set(members) == {f"second{n}@example.com" for n in range(RENAMED)} | {
        f"plain{n}@example.com" for n in range(PLAIN)
    }
    assert all(m["status"] == "subscribed" for m in members.values())
    outcomes: dict[str, tuple[str, str, str]] = {}
    for cmd, result in results.values():
        assert isinstance(result, MemberSynced), result
        outcomes[cmd.email_address] = (result.outcome, result.mailchimp_status, result.via)
    for n in range(RENAMED):
        assert outcomes[f"first{n}@example.com"] == ("unchanged", "absent", "member")
        assert outcomes[f"second{n}@example.com"][:2] == ("created", "subscribed")
    # The other new members of the batch still go through batch subscribe.
    assert {outcomes[f"plain{n}@example.com"] for n in range(PLAIN)} == {("created", "subscribed", "batch")}


async def test_replaying_a_creation_and_its_rename_does_not_bring_the_old_address_back(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    members, results = await _run(kafka, tmp_path, seeded=True)
    assert not {f"first{n}@example.com" for n in range(RENAMED)} & set(members)
    assert len(members) == RENAMED + PLAIN
    for cmd, result in results.values():
        assert isinstance(result, MemberSynced), result
        if cmd.previous_email:
            assert (result.outcome, result.mailchimp_status) == ("unchanged", "subscribed")
