"""Building request bodies from commands, comparing members, and mapping batch-subscribe answers."""

from __future__ import annotations

from typing import Any

import pytest

from services.loader.bulk import BulkAnswer, chunk_sizes, map_batch_answer
from services.loader.upsert_request import (
    batch_item,
    create_body,
    failed_event,
    is_plain_upsert,
    is_rename,
    member_view,
    merge_changes,
    missing_tags,
    subscriber_hash,
    synced_event,
    tag_changes,
    unsubscribe_body,
    update_body,
)
from tests.loader.support import command


def test_subscriber_hash_is_md5_of_the_trimmed_lower_cased_address() -> None:
    assert subscriber_hash(" Urist.McVankab@freddiesjokes.com ") == "62eeb292278cc15f5817cb78f7790b08"


def test_upsert_bodies_never_carry_status() -> None:
    cmd = command("C1", "a@b.co", merge_fields={"FNAME": "A"}, tags_add=["vip"], status_if_new="pending")
    for body in (create_body(cmd, inline_tags=True), update_body(cmd)):
        assert "status" not in body
        assert body["status_if_new"] == "pending"
        assert body["email_address"] == "a@b.co" and body["merge_fields"] == {"FNAME": "A"}
    assert create_body(cmd, inline_tags=True)["tags"] == ["vip"]
    assert "tags" not in create_body(cmd, inline_tags=False)
    assert "tags" not in update_body(cmd)


def test_only_unsubscribe_sends_status() -> None:
    cmd = command("C1", "a@b.co", action="unsubscribe", merge_fields={"FNAME": "A"})
    assert unsubscribe_body(cmd, change_status=True) == {
        "merge_fields": {"FNAME": "A"},
        "status": "unsubscribed",
    }
    assert unsubscribe_body(cmd, change_status=False) == {"merge_fields": {"FNAME": "A"}}


def test_batch_items_carry_the_new_member_status_and_tags() -> None:
    cmd = command("C1", "a@b.co", merge_fields={"FNAME": "A"}, tags_add=["vip", "VIP", " b2b "])
    assert batch_item(cmd, inline_tags=True) == {
        "email_address": "a@b.co",
        "status": "subscribed",
        "merge_fields": {"FNAME": "A"},
        "tags": ["vip", "b2b"],
    }


def test_renames_and_plain_upserts_are_told_apart() -> None:
    assert is_rename(command("C1", "new@b.co", previous_email="old@b.co"))
    assert not is_rename(command("C1", "Same@b.co", previous_email="same@b.co "))
    assert is_plain_upsert(command("C1", "a@b.co", tags_add=["x"]))
    assert not is_plain_upsert(command("C1", "a@b.co", tags_remove=["x"]))
    assert not is_plain_upsert(command("C1", "a@b.co", action="archive"))
    assert not is_plain_upsert(command("C1", "new@b.co", previous_email="old@b.co"))


def _member(merge: dict[str, Any], tags: list[str] = (), status: str = "subscribed") -> Any:  # type: ignore[assignment]
    return member_view(
        {
            "email_address": "a@b.co",
            "status": status,
            "merge_fields": merge,
            "tags": [{"id": i, "name": t} for i, t in enumerate(tags)],
        }
    )


def test_merge_changes_report_only_fields_that_differ() -> None:
    member = _member({"FNAME": "Ann", "LNAME": "", "PHONE": "555", "ADDRESS": ""})
    wanted = {"FNAME": "Ann", "LNAME": "Lee", "PHONE": 555, "ADDRESS": {"addr1": "", "city": ""}}
    assert merge_changes(wanted, member) == ["merge_fields.LNAME"]


def test_an_address_is_compared_part_by_part() -> None:
    stored = {"addr1": "1 Main St", "addr2": "", "city": "Town", "state": "ST", "zip": "123", "country": "US"}
    member = _member({"ADDRESS": stored})
    assert (
        merge_changes(
            {"ADDRESS": {"addr1": "1 Main St", "city": "Town", "state": "ST", "zip": "123"}}, member
        )
        == []
    )
    assert merge_changes(
        {"ADDRESS": {"addr1": "2 Main St", "city": "Town", "state": "ST", "zip": "123"}}, member
    ) == ["merge_fields.ADDRESS"]
    assert merge_changes({"ADDRESS": ""}, member) == ["merge_fields.ADDRESS"]


def test_tag_changes_are_case_insensitive_and_minimal() -> None:
    current = _member({}, ["VIP", "Old", "keep"]).tags
    changes = tag_changes(["vip", "B2B", "b2b"], ["old", "absent", "B2B"], current)
    assert changes == [{"name": "B2B", "status": "active"}, {"name": "old", "status": "inactive"}]
    assert tag_changes(["vip"], [], current) == []


def test_without_a_known_member_every_tag_change_is_sent() -> None:
    assert tag_changes(["a"], ["b"], None) == [
        {"name": "a", "status": "active"},
        {"name": "b", "status": "inactive"},
    ]


def test_missing_tags_finds_inline_tags_mailchimp_did_not_apply() -> None:
    assert missing_tags(["vip", "B2B"], _member({}, ["VIP"])) == ["B2B"]


def test_results_chain_to_the_command() -> None:
    cmd = command("C1", "a@b.co")
    synced = synced_event(cmd, "created", "subscribed", ["status", "status"], 2, "batch")
    assert (synced.causation_id, synced.correlation_id, synced.command_occurred_at) == (
        cmd.event_id,
        cmd.correlation_id,
        cmd.occurred_at,
    )
    assert synced.changed == ["status"] and synced.key() == cmd.key()
    failed = failed_event(cmd, "invalid_email", True, "x" * 5000, 1, 400, {"title": "Invalid Resource"})
    assert failed.causation_id == cmd.event_id and len(failed.detail) == 2000


@pytest.mark.parametrize(
    ("total", "max_members", "slots", "expected"),
    [
        (0, 500, 9, []),
        (49, 500, 9, [49]),
        (120, 500, 9, [60, 60]),
        (450, 500, 9, [50] * 9),
        (4500, 500, 9, [500] * 9),
        (1000, 500, 1, [500, 500]),
        (1001, 500, 1, [334, 334, 333]),
    ],
)
def test_chunks_are_balanced_and_a_small_backlog_fills_the_connection_slots(
    total: int, max_members: int, slots: int, expected: list[int]
) -> None:
    sizes = chunk_sizes(total, max_members, slots)
    assert sizes == expected
    assert sum(sizes) == total and all(s <= max_members for s in sizes)


def test_a_large_backlog_uses_full_calls() -> None:
    assert chunk_sizes(5000, 500, 9) == [500] * 10
    assert chunk_sizes(4600, 500, 4) == [460] * 10


def test_without_spreading_a_small_batch_goes_in_as_few_calls_as_possible() -> None:
    # Work waiting behind the batch (or calls in flight) means the slots will be busy anyway.
    assert chunk_sizes(1700, 500, 9, spread=False) == [425] * 4
    assert chunk_sizes(450, 500, 9, spread=False) == [450]
    assert chunk_sizes(450, 500, 9, spread=True) == [50] * 9


def test_batch_answers_are_mapped_back_to_commands_by_lower_cased_address() -> None:
    commands = [
        command("C1", "New@Example.com"),
        command("C2", "old@example.com"),
        command("C3", "bad@nowhere"),
        command("C4", "odd@example.com"),
        command("C5", "lost@example.com"),
        command("C6", "merge@example.com"),
    ]
    doc: dict[str, Any] = {
        "new_members": [{"email_address": "new@example.com", "status": "subscribed", "tags": []}],
        "updated_members": [],
        "errors": [
            {
                "email_address": "old@example.com",
                "error": "old@example.com is already a list member, do you "
                "want to update? please provide update_existing:true in the request body",
                "error_code": "ERROR_CONTACT_EXISTS",
                "field": "",
                "field_message": "",
            },
            {
                "email_address": "bad@nowhere",
                "error": "Please provide a valid email address.",
                "error_code": "ERROR_GENERIC",
                "field": "",
                "field_message": "",
            },
            {"email_address": "odd@example.com", "error": "Something new", "error_code": "ERROR_GENERIC"},
            {
                "email_address": "merge@example.com",
                "error": "Your merge fields were invalid.",
                "error_code": "ERROR_GENERIC",
                "field": "ADDRESS",
                "field_message": "Please enter a complete address",
            },
        ],
    }
    answers = map_batch_answer(commands, doc, attempts=2)
    assert [a.kind for a in answers] == ["created", "fallback", "failed", "fallback", "fallback", "failed"]
    assert answers[0].doc == doc["new_members"][0] and answers[0].attempts == 2
    assert (answers[2].reason, answers[2].permanent, answers[2].response) == (
        "invalid_email",
        True,
        doc["errors"][1],
    )
    assert answers[5].reason == "merge_fields_invalid" and "ADDRESS" in answers[5].detail
    assert answers[1] == BulkAnswer("fallback", 2)
