"""The single-member path against the Mailchimp simulator and the real broker.

One loader run applies every scenario's commands (each scenario is its own customer, so they do not
interfere); each test then checks its scenario's results and the simulator's audience.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.loader.upsert_request import subscriber_hash
from shared.events import MailchimpMemberUpsert, MemberSynced, MemberSyncFailed
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from shared.topics import DEAD_LETTER, MEMBER_UPSERT
from tests.helpers import produce, produce_raw, read_all, running
from tests.loader.support import (
    API_KEY,
    LIST_ID,
    Mailchimp,
    Result,
    command,
    loader_service,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)


@dataclass
class Run:
    commands: dict[str, list[MailchimpMemberUpsert]] = field(default_factory=dict)
    results: dict[uuid.UUID, Result] = field(default_factory=dict)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    dead: list[Any] = field(default_factory=list)

    def result(self, scenario: str, index: int = -1) -> Result:
        return self.results[self.commands[scenario][index].event_id]

    def synced(self, scenario: str, index: int = -1) -> MemberSynced:
        found = self.result(scenario, index)
        assert isinstance(found, MemberSynced), found
        return found

    def failed(self, scenario: str, index: int = -1) -> MemberSyncFailed:
        found = self.result(scenario, index)
        assert isinstance(found, MemberSyncFailed), found
        return found

    def member(self, email: str) -> dict[str, Any] | None:
        return self.members.get(email.lower())

    def tags(self, email: str) -> set[str]:
        member = self.member(email)
        assert member is not None
        return {t["name"] for t in member["tags"]}

    def requests(self, kind: str, fragment: str) -> list[dict[str, Any]]:
        return [e for e in self.log if e["kind"] == kind and fragment in e["path"]]


def _scenarios() -> dict[str, list[MailchimpMemberUpsert]]:
    return {
        "bad_then_good": [
            command("C-bad", "not-an-address@nowhere"),
            command("C-bad", "ann@example.com", merge_fields={"FNAME": "Ann"}),
        ],
        "fake": [command("C-fake", "fake@example.com")],
        "update": [
            command("C-upd", "bob@example.com", merge_fields={"FNAME": "Robert", "LNAME": "Smith"}),
            command("C-upd", "bob@example.com", merge_fields={"FNAME": "Robert", "LNAME": "Smith"}),
        ],
        "unsub_upsert": [command("C-uns", "una@example.com", merge_fields={"FNAME": "Una"})],
        "rename": [command("C-ren", "carl.new@example.com", previous_email="carl@example.com")],
        "rename_absent": [command("C-rab", "dora.new@example.com", previous_email="dora@example.com")],
        "rename_taken": [
            command("C-rtk", "eve.new@example.com", previous_email="eve@example.com", tags_add=["vip"])
        ],
        "tags": [command("C-tag", "fay@example.com", tags_add=["vip", "B2B"], tags_remove=["old", "absent"])],
        "archive": [command("C-arc", "gus@example.com", action="archive")],
        "archive_absent": [command("C-arn", "nobody@example.com", action="archive")],
        "archive_cleaned": [command("C-arc2", "hal@example.com", action="archive")],
        "archive_unsubscribed": [command("C-arc3", "ida@example.com", action="archive")],
        "unsubscribe": [command("C-uns2", "jay@example.com", action="unsubscribe")],
        "unsubscribe_absent": [command("C-uns3", "kim@example.com", action="unsubscribe")],
        "merge_invalid": [command("C-mf", "lea@example.com", merge_fields={"NOPE": "x"})],
        "compliance": [command("C-cmp", "ned@example.com")],
        "unknown_audience": [
            command("C-unk", "ozzy@example.com").model_copy(update={"audience_id": "ghost"})
        ],
    }


def _seed(sim: Any) -> None:
    sim.seed_member(LIST_ID, "bob@example.com", merge_fields={"FNAME": "Bob", "LNAME": "Smith"})
    sim.seed_member(LIST_ID, "una@example.com", status="unsubscribed", merge_fields={"FNAME": "U"})
    sim.seed_member(LIST_ID, "carl@example.com", merge_fields={"FNAME": "Carl"}, tags=["vip"])
    sim.seed_member(LIST_ID, "eve@example.com", tags=["vip", "foreign"])
    sim.seed_member(LIST_ID, "eve.new@example.com", merge_fields={"FNAME": "Eve"})
    sim.seed_member(LIST_ID, "fay@example.com", tags=["VIP", "Old", "keep"])
    sim.seed_member(LIST_ID, "gus@example.com")
    sim.seed_member(LIST_ID, "hal@example.com")
    sim.clean(LIST_ID, "hal@example.com")
    sim.seed_member(LIST_ID, "ida@example.com", status="unsubscribed")
    sim.seed_member(LIST_ID, "jay@example.com")
    sim.seed_member(LIST_ID, "ned@example.com", status="unsubscribed")


def _archive_through_the_api(mc: Mailchimp, email: str) -> None:
    """What an account user archiving a contact in Mailchimp looks like to the loader."""
    response = httpx.delete(
        mc.api_base.replace("{dc}", "us6") + f"/lists/{LIST_ID}/members/{_hash(email)}",
        auth=("user", API_KEY),
    )
    assert response.status_code == 204


@pytest.fixture(scope="module")
async def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=f"t{uuid.uuid4().hex[:10]}.")
    await ensure_topics(kafka)
    files = write_loader_files(Path(tmp_path_factory.mktemp("loader")))
    scenarios = _scenarios()
    everything = [c for commands in scenarios.values() for c in commands]
    out = Run(commands=scenarios)
    with served_mailchimp() as mc:
        _seed(mc.sim)
        # ned: unsubscribed by the contact, then archived by an account user.
        _archive_through_the_api(mc, "ned@example.com")
        await produce(kafka, MEMBER_UPSERT.name, everything[:1])
        await produce_raw(kafka, MEMBER_UPSERT.name, b"{not json", key=b"acme:C-bad")
        await produce(kafka, MEMBER_UPSERT.name, everything[1:])
        async with running(loader_service(kafka, files, mc.api_base)):
            found = await wait_for_results(kafka, len(everything))
        out.results = {r.causation_id: r for r in found if r.causation_id is not None}
        out.members = {m["email_address"].lower(): m for m in mc.sim.members(LIST_ID)}
        out.log = mc.sim.request_log()
    out.dead = await read_all(kafka, DEAD_LETTER.name)
    yield out


def _hash(email: str) -> str:
    return subscriber_hash(email)


def test_invalid_email_fails_permanently_in_one_attempt_and_the_next_command_is_applied(run: Run) -> None:
    failed = run.failed("bad_then_good", 0)
    assert (failed.permanent, failed.reason, failed.attempts, failed.http_status) == (
        True,
        "invalid_email",
        1,
        400,
    )
    assert failed.response is not None and failed.response["title"] == "Invalid Resource"
    assert failed.correlation_id == run.commands["bad_then_good"][0].correlation_id
    assert len(run.requests("member_put", _hash("not-an-address@nowhere"))) == 1
    synced = run.synced("bad_then_good", 1)
    assert (synced.outcome, synced.mailchimp_status, synced.via) == ("created", "subscribed", "member")
    assert synced.command_occurred_at == run.commands["bad_then_good"][1].occurred_at
    assert run.member("ann@example.com")["merge_fields"]["FNAME"] == "Ann"  # type: ignore[index]


def test_permanent_failures_and_undecodable_records_are_dead_lettered_with_their_reason(run: Run) -> None:
    reasons = sorted(dict(r.headers)["mlc.error.reason"].decode() for r in run.dead)
    assert reasons == sorted(
        [
            "invalid_email",
            "fake_email",
            "merge_fields_invalid",
            "cannot_archive",
            "compliance_state",
            "not_json",
            "unknown_audience",
        ]
    )
    by_reason = {dict(r.headers)["mlc.error.reason"]: r for r in run.dead}
    assert by_reason[b"invalid_email"].value == run.commands["bad_then_good"][0].model_dump_json().encode()
    assert by_reason[b"not_json"].value == b"{not json"
    assert all(dict(r.headers)["mlc.error.stage"] == b"loader" for r in run.dead)


def test_fake_address_is_its_own_reason(run: Run) -> None:
    assert run.failed("fake").reason == "fake_email"


def test_existing_member_is_updated_and_a_repeat_changes_nothing(run: Run) -> None:
    first, second = run.synced("update", 0), run.synced("update", 1)
    assert (first.outcome, first.changed) == ("updated", ["merge_fields.FNAME"])
    assert (second.outcome, second.changed) == ("unchanged", [])
    assert len(run.requests("member_put", _hash("bob@example.com"))) == 1


def test_upsert_never_resubscribes_an_unsubscribed_member(run: Run) -> None:
    synced = run.synced("unsub_upsert")
    assert (synced.outcome, synced.mailchimp_status) == ("updated", "unsubscribed")
    member = run.member("una@example.com")
    assert member is not None and member["status"] == "unsubscribed"
    assert member["merge_fields"]["FNAME"] == "Una"


def test_rename_moves_the_member_to_the_new_address(run: Run) -> None:
    synced = run.synced("rename")
    assert synced.outcome == "renamed" and "email_address" in synced.changed
    assert run.member("carl@example.com") is None
    moved = run.member("carl.new@example.com")
    assert moved is not None and moved["merge_fields"]["FNAME"] == "Carl" and moved["status"] == "subscribed"


def test_rename_of_an_absent_member_creates_the_new_one(run: Run) -> None:
    assert run.synced("rename_absent").outcome == "created"
    assert run.member("dora.new@example.com") is not None


def test_rename_onto_an_existing_member_clears_our_tags_on_the_old_one_and_updates_the_existing(
    run: Run,
) -> None:
    synced = run.synced("rename_taken")
    assert synced.outcome == "updated"
    assert run.tags("eve@example.com") == {"foreign"}
    assert run.tags("eve.new@example.com") == {"vip"}
    assert run.member("eve.new@example.com")["merge_fields"]["FNAME"] == "Eve"  # type: ignore[index]


def test_tags_are_compared_case_insensitively_and_only_needed_changes_are_sent(run: Run) -> None:
    synced = run.synced("tags")
    assert synced.outcome == "updated" and synced.changed == ["tags"]
    assert {t.lower() for t in run.tags("fay@example.com")} == {"vip", "b2b", "keep"}
    assert len(run.requests("tags", _hash("fay@example.com"))) == 1


def test_archive_archives_and_tolerates_an_absent_member(run: Run) -> None:
    assert (run.synced("archive").outcome, run.member("gus@example.com")["status"]) == (  # type: ignore[index]
        "archived",
        "archived",
    )
    absent = run.synced("archive_absent")
    assert (absent.outcome, absent.mailchimp_status) == ("unchanged", "absent")


def test_archiving_a_cleaned_member_is_a_permanent_cannot_archive(run: Run) -> None:
    failed = run.failed("archive_cleaned")
    assert (failed.reason, failed.permanent, failed.http_status) == ("cannot_archive", True, 405)


def test_an_unsubscribed_member_is_not_archived_so_its_opt_out_cannot_be_undone(run: Run) -> None:
    synced = run.synced("archive_unsubscribed")
    assert (synced.outcome, synced.mailchimp_status) == ("unchanged", "unsubscribed")
    assert run.requests("member_delete", _hash("ida@example.com")) == []


def test_unsubscribe_sets_the_status_and_never_creates_a_member(run: Run) -> None:
    synced = run.synced("unsubscribe")
    assert (synced.outcome, synced.mailchimp_status) == ("unsubscribed", "unsubscribed")
    assert run.member("jay@example.com")["status"] == "unsubscribed"  # type: ignore[index]
    assert run.synced("unsubscribe_absent").mailchimp_status == "absent"
    assert run.member("kim@example.com") is None


def test_invalid_merge_fields_are_reported_with_the_field(run: Run) -> None:
    failed = run.failed("merge_invalid")
    assert failed.reason == "merge_fields_invalid" and "NOPE" in failed.detail


def test_a_command_for_an_audience_not_in_the_connections_file_fails_permanently(run: Run) -> None:
    failed = run.failed("unknown_audience")
    assert (failed.reason, failed.permanent, failed.attempts) == ("unknown_audience", True, 0)
    assert "ghost" in failed.detail


def test_an_archived_contact_unsubscribe_refuses_reactivation_as_compliance_state(run: Run) -> None:
    failed = run.failed("compliance")
    assert (failed.reason, failed.permanent, failed.mailchimp_status) == (
        "compliance_state",
        True,
        "archived",
    )
    assert run.member("ned@example.com")["status"] == "archived"  # type: ignore[index]
