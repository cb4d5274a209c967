"""Batch subscribe for large backlogs: new members in 500-member calls, existing ones left to the
single-member path, every item's answer mapped back to its command."""

from __future__ import annotations

from pathlib import Path

from shared.events import MemberSynced, MemberSyncFailed
from shared.settings import KafkaSettings
from shared.topics import DEAD_LETTER
from tests.helpers import read_all, running
from tests.loader.support import (
    LIST_ID,
    command,
    loader_service,
    produce_commands,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)


async def test_a_backlog_of_new_members_goes_through_batch_subscribe_without_touching_existing_statuses(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    new = [
        command(f"N{n}", f"new{n}@example.com", merge_fields={"FNAME": f"New{n}"}, tags_add=["customer"])
        for n in range(540)
    ]
    existing = [
        command(f"E{n}", f"old{n}@example.com", merge_fields={"FNAME": f"Old{n}"}, tags_add=["customer"])
        for n in range(30)
    ]
    invalid = [command(f"I{n}", f"broken{n}@nowhere") for n in range(5)]
    fake = [command(f"F{n}", f"test@fake{n}.example.com") for n in range(3)]
    commands = new[:270] + existing + invalid + fake + new[270:]
    with served_mailchimp(latency_ms={"batch_members": 200, "member_put": 20}) as mc:
        for n in range(30):
            status = "unsubscribed" if n % 3 == 0 else "subscribed"
            mc.sim.seed_member(
                LIST_ID, f"old{n}@example.com", status=status, merge_fields={"FNAME": "Before"}
            )
        await produce_commands(kafka, commands)
        async with running(loader_service(kafka, files, mc.api_base)):
            found = await wait_for_results(kafka, len(commands), timeout=120)
        members = {m["email_address"]: m for m in mc.sim.members(LIST_ID)}
        log = mc.sim.request_log()
        assert mc.throttled() == 0
    by_command = {r.causation_id: r for r in found}
    assert len(found) == len(commands)
    for cmd in new:
        result = by_command[cmd.event_id]
        assert isinstance(result, MemberSynced), result
        assert (result.outcome, result.via, result.mailchimp_status) == ("created", "batch", "subscribed")
        member = members[cmd.email_address]
        assert member["merge_fields"]["FNAME"] == cmd.merge_fields["FNAME"]
        assert [t["name"] for t in member["tags"]] == ["customer"]
    for n, cmd in enumerate(existing):
        result = by_command[cmd.event_id]
        assert isinstance(result, MemberSynced) and (result.outcome, result.via) == ("updated", "member")
        member = members[cmd.email_address]
        assert member["status"] == ("unsubscribed" if n % 3 == 0 else "subscribed")
        assert member["merge_fields"]["FNAME"] == f"Old{n}"
    for cmd, reason in [*((c, "invalid_email") for c in invalid), *((c, "fake_email") for c in fake)]:
        result = by_command[cmd.event_id]
        assert isinstance(result, MemberSyncFailed) and (result.reason, result.permanent) == (reason, True)
        assert result.attempts == 1
    batch_calls = [e for e in log if e["kind"] == "batch_members"]
    assert 2 <= len(batch_calls) <= 12
    # Tags went inline with the new members: only the existing members needed a /tags call.
    assert len([e for e in log if e["kind"] == "tags"]) == len(existing)
    dead = await read_all(kafka, DEAD_LETTER.name)
    assert sorted(dict(r.headers)["mlc.error.reason"].decode() for r in dead) == sorted(
        ["invalid_email"] * 5 + ["fake_email"] * 3
    )


async def test_tags_not_taken_inline_are_posted_after_batch_subscribe(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    commands = [command(f"T{n}", f"tag{n}@example.com", tags_add=["Customer", "b2b"]) for n in range(600)]
    with served_mailchimp() as mc:
        await produce_commands(kafka, commands)
        async with running(loader_service(kafka, files, mc.api_base, inline_tags=False)):
            found = await wait_for_results(kafka, len(commands))
        members = {m["email_address"]: m for m in mc.sim.members(LIST_ID)}
        tag_calls = [e for e in mc.sim.request_log() if e["kind"] == "tags"]
    assert all(isinstance(r, MemberSynced) and r.via == "batch" and r.outcome == "created" for r in found)
    assert all(sorted(t["name"] for t in m["tags"]) == ["Customer", "b2b"] for m in members.values())
    assert len(tag_calls) == len(commands)
