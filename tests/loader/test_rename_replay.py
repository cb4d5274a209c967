"""A rename is applied only once its customer's earlier commands are committed.

Otherwise a crash could leave a creation and its rename both applied and uncommitted; applied again
(possibly split over other batches), the creation would find the old address absent (renamed) and
create it again, a member that no customer calls for. The reliability suite's audience check and the
loader's SIGKILL test caught exactly that. The loader therefore cuts a batch before a rename that
follows its customer's earlier command, and starts the rest once everything before it is committed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.loader.handler import CommandHandler
from services.loader.metrics import RENAMES_HELD
from shared.codec import encode
from shared.events import MailchimpMemberUpsert, MemberSynced
from shared.settings import KafkaSettings
from shared.topics import MEMBER_UPSERT
from tests.helpers import running
from tests.loader.support import (
    LIST_ID,
    command,
    loader_service,
    produce_commands,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)
from tests.mapper.factories import record

RENAMED = 60
PLAIN = 60


def _records(commands: list[MailchimpMemberUpsert]) -> list[Any]:
    return [record(encode(c), MEMBER_UPSERT.name, 0, i, c.key()) for i, c in enumerate(commands)]


def test_split_cuts_before_a_rename_that_follows_its_customers_earlier_command() -> None:
    split = CommandHandler.split
    create_a = command("A", "a@example.com")
    create_b = command("B", "b@example.com")
    rename_a = command("A", "a2@example.com", previous_email="a@example.com")
    rename_a_again = command("A", "a3@example.com", previous_email="a2@example.com")
    update_b = command("B", "b@example.com", merge_fields={"FNAME": "B"})
    assert split(_records([create_a, create_b, update_b])) is None
    assert split(_records([create_a, create_b, rename_a, update_b])) == 2
    # A rename first in its batch needs no cut (an earlier batch is waited for by the handler).
    assert split(_records([rename_a, create_b, update_b])) is None
    assert split(_records([rename_a, rename_a_again])) == 1
    # The same address again, written differently, is not a rename.
    same = command("A", "A@Example.com", previous_email="a@example.com")
    assert split(_records([create_a, same])) is None


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


async def test_creations_and_their_renames_in_one_fetch_are_applied_in_two_committed_steps(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    commands = _commands()
    held_before = RENAMES_HELD._value.get()
    with served_mailchimp(latency_ms={"member_put": 5, "batch_members": 50}) as mc:
        await produce_commands(kafka, commands)
        # A customer's commands share a partition, so a fetch brings its creation and rename together.
        service = loader_service(kafka, files, mc.api_base, max_batch=len(commands) * 2, bulk_min_members=1)
        async with running(service):
            found = await wait_for_results(kafka, len(commands), timeout=120)
        members = {m["email_address"]: m for m in mc.sim.members(LIST_ID)}
        assert mc.throttled() == 0
    assert RENAMES_HELD._value.get() > held_before
    assert set(members) == {f"second{n}@example.com" for n in range(RENAMED)} | {
        f"plain{n}@example.com" for n in range(PLAIN)
    }
    assert all(m["status"] == "subscribed" for m in members.values())
    by_command = {str(r.causation_id): r for r in found}
    for cmd in commands:
        result = by_command[str(cmd.event_id)]
        assert isinstance(result, MemberSynced), result
        expected = "renamed" if cmd.previous_email else "created"
        assert (result.outcome, result.mailchimp_status) == (expected, "subscribed"), cmd
