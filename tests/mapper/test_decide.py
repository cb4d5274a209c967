"""The mapper's decisions, through the pipeline with its state but without Kafka."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from services.mapper.email_identity import subscriber_hash
from shared.codec import encode
from shared.events import (
    CustomerRejected,
    EmailOwnership,
    Event,
    MailchimpMemberUpsert,
    MemberState,
    MemberSynced,
    MemberSyncFailed,
)
from shared.topics import CUSTOMER_CHANGED
from tests.mapper.factories import CONNECTION, Harness, change, config, record


def _of(events: list[Event], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


Outcome = Literal["created", "updated", "renamed", "archived", "unsubscribed", "unchanged"]


def _synced(
    customer: str, email: str, status: str = "subscribed", outcome: Outcome = "created"
) -> MemberSynced:
    return MemberSynced(
        connection_id=CONNECTION,
        customer=customer,
        audience_id="main",
        list_id="L1",
        email_address=email,
        subscriber_hash=subscriber_hash(email),
        outcome=outcome,
        mailchimp_status=status,
    )


def _failed(customer: str, email: str, reason: str) -> MemberSyncFailed:
    return MemberSyncFailed(
        connection_id=CONNECTION,
        customer=customer,
        audience_id="main",
        list_id="L1",
        email_address=email,
        subscriber_hash=subscriber_hash(email),
        permanent=True,
        reason=reason,
    )


def test_a_new_customer_becomes_one_upsert_with_its_state_and_address_claim() -> None:
    h = Harness()
    source = change("000019", kind="created")
    out = h.feed(source)
    [command] = _of(out, MailchimpMemberUpsert)
    assert command.email_address == "accounts@johnsons.example"
    assert command.subscriber_hash == subscriber_hash("accounts@johnsons.example")
    assert (command.action, command.status_if_new, command.previous_email) == ("upsert", "subscribed", None)
    assert command.causation_id == source.event_id and command.correlation_id == source.correlation_id
    [state] = _of(out, MemberState)
    assert state.audiences["main"].email_address == "accounts@johnsons.example"
    [claim] = _of(out, EmailOwnership)
    assert claim.customer == "000019" and claim.subscriber_hash == command.subscriber_hash
    assert h.owner("main", "accounts@johnsons.example") == "000019"


def test_an_email_change_is_a_rename_that_frees_the_old_address() -> None:
    h = Harness()
    h.feed(change("000019", kind="created", Email="old@johnsons.example"))
    out = h.feed(change("000019", Email="new@johnsons.example"))
    [command] = _of(out, MailchimpMemberUpsert)
    assert (command.email_address, command.previous_email) == ("new@johnsons.example", "old@johnsons.example")
    assert h.owner("main", "new@johnsons.example") == "000019"
    assert h.owner("main", "old@johnsons.example") is None
    old_key = f"{CONNECTION}:main:{subscriber_hash('old@johnsons.example')}".encode()
    assert old_key in h.tombstones()


def test_a_change_of_case_only_is_not_a_rename() -> None:
    h = Harness()
    h.feed(change("000019", Email="jane@johnsons.example"))
    [command] = _of(h.feed(change("000019", Email="Jane@Johnsons.example")), MailchimpMemberUpsert)
    assert command.previous_email is None and command.email_address == "Jane@Johnsons.example"


def test_a_duplicate_email_gives_one_command_and_one_rejection_naming_the_owner() -> None:
    h = Harness()
    out = h.feed(change("000001", Email="shared@example.com"), change("000002", Email=" Shared@Example.com "))
    assert [c.customer for c in _of(out, MailchimpMemberUpsert)] == ["000001"]
    [rejected] = _of(out, CustomerRejected)
    assert (rejected.customer, rejected.reason, rejected.owner) == ("000002", "duplicate_email", "000001")
    assert (rejected.field, rejected.value, rejected.audience_id) == ("Email", "Shared@Example.com", "main")


def test_a_waiting_customer_gets_the_address_once_the_owner_lets_it_go() -> None:
    h = Harness()
    h.feed(
        change("000001", Email="shared@example.com"),
        change("000002", Email="shared@example.com", Contact="Bob Lee"),
    )
    out = h.feed(change("000001", Email="own@example.com"))
    commands = {c.customer: c for c in _of(out, MailchimpMemberUpsert)}
    assert commands["000001"].previous_email == "shared@example.com"
    woken = commands["000002"]
    assert (woken.email_address, woken.previous_email, woken.merge_fields["FNAME"]) == (
        "shared@example.com",
        None,
        "Bob",
    )
    assert "on-hold" in woken.tags_remove  # a previous owner's status tags are cleared
    assert h.owner("main", "shared@example.com") == "000002"


def test_a_waiting_customer_that_changed_its_email_is_not_woken_for_the_old_one() -> None:
    h = Harness()
    h.feed(change("000001", Email="shared@example.com"), change("000002", Email="shared@example.com"))
    h.feed(change("000002", Email="mine@example.com"))
    out = h.feed(change("000001", kind="deleted"))
    assert [c.customer for c in _of(out, MailchimpMemberUpsert)] == ["000001"]
    assert h.owner("main", "shared@example.com") is None


def test_with_most_recent_the_latest_claimant_takes_the_address() -> None:
    h = Harness(config({"email": {"duplicates": "most_recent"}}))
    h.feed(change("000001", Email="shared@example.com"))
    out = h.feed(change("000002", Email="shared@example.com"))
    assert [c.customer for c in _of(out, MailchimpMemberUpsert)] == ["000002"]
    [displaced] = _of(out, CustomerRejected)
    assert (displaced.customer, displaced.reason, displaced.owner) == ("000001", "duplicate_email", "000002")
    assert h.owner("main", "shared@example.com") == "000002"


def test_an_address_that_becomes_invalid_is_rejected_and_released() -> None:
    h = Harness()
    h.feed(change("000001", Email="jane@example.com"))
    out = h.feed(change("000001", Email="jane@"))
    [rejected] = _of(out, CustomerRejected)
    assert (rejected.reason, rejected.field, rejected.value) == ("invalid_email", "Email", "jane@")
    assert not _of(out, MailchimpMemberUpsert)
    assert h.owner("main", "jane@example.com") is None
    [command] = _of(h.feed(change("000001", Email="jane@example.com")), MailchimpMemberUpsert)
    assert command.previous_email is None


def test_fixing_the_email_in_syspro_gives_a_normal_upsert() -> None:
    h = Harness()
    [rejected] = _of(h.feed(change("000001", Email="")), CustomerRejected)
    assert rejected.reason == "no_email"
    [command] = _of(h.feed(change("000001", Email="fixed@example.com")), MailchimpMemberUpsert)
    assert command.email_address == "fixed@example.com"


def test_on_hold_with_the_tag_action_tags_and_reactivation_removes_the_tag() -> None:
    h = Harness(config({"tags": {"from_columns": {"Branch": "branch-"}}}))
    h.feed(change("000001"))
    [held] = _of(h.feed(change("000001", CustomerOnHold="Y")), MailchimpMemberUpsert)
    assert (held.action, held.tags_add, held.tags_remove) == ("upsert", ["branch-10", "on-hold"], [])
    [moved] = _of(h.feed(change("000001", CustomerOnHold="N", Branch="11")), MailchimpMemberUpsert)
    assert (moved.tags_add, moved.tags_remove) == (["branch-11"], ["branch-10", "on-hold"])


def test_on_hold_with_the_archive_action_archives_and_reactivation_upserts_again() -> None:
    h = Harness(config({"policy": {"inactive_action": "archive"}}))
    h.feed(change("000001"))
    [archive] = _of(h.feed(change("000001", CustomerOnHold="Y")), MailchimpMemberUpsert)
    assert archive.action == "archive" and archive.email_address == "accounts@johnsons.example"
    [again] = _of(h.feed(change("000001", CustomerOnHold="Y", Telephone="1")), CustomerRejected)
    assert again.reason == "excluded_by_policy"
    [back] = _of(h.feed(change("000001")), MailchimpMemberUpsert)
    assert back.action == "upsert" and back.merge_fields["FNAME"] == "Jane"


def test_an_inactive_customer_that_is_not_a_member_is_not_added_to_be_archived() -> None:
    h = Harness(config({"policy": {"inactive_action": "archive"}}))
    out = h.feed(change("000001", CreditStatus="9"))
    assert not _of(out, MailchimpMemberUpsert)
    [rejected] = _of(out, CustomerRejected)
    assert rejected.reason == "excluded_by_policy" and "credit_hold" in rejected.detail
    assert h.owner("main", "accounts@johnsons.example") is None


def test_the_unsubscribe_action_is_never_undone_by_a_subscribe() -> None:
    h = Harness(config({"policy": {"inactive_action": "unsubscribe"}}))
    h.feed(change("000001"))
    [unsub] = _of(h.feed(change("000001", CustomerOnHold="Y")), MailchimpMemberUpsert)
    assert unsub.action == "unsubscribe"
    out = h.feed(change("000001", CustomerOnHold="N"))
    for command in _of(out, MailchimpMemberUpsert):
        assert command.action == "upsert" and command.previous_email is None
        assert any("never subscribe" in n for n in command.notes)
    assert h.tables.member(0, f"{CONNECTION}:000001")["main"].terminal  # type: ignore[index]


def test_a_member_unsubscribed_in_mailchimp_is_never_unarchived_or_recreated() -> None:
    h = Harness(config({"policy": {"inactive_action": "archive"}}))
    h.feed(change("000001", Email="jane@example.com"))
    out = h.feed(_synced("000001", "jane@example.com", status="unsubscribed", outcome="updated"))
    [state] = _of(out, MemberState)
    assert state.audiences["main"].terminal
    [archive] = _of(h.feed(change("000001", CustomerOnHold="Y")), MailchimpMemberUpsert)
    assert archive.action == "archive"
    out = h.feed(change("000001", CustomerOnHold="N"))
    assert not _of(out, MailchimpMemberUpsert)
    [rejected] = _of(out, CustomerRejected)
    assert rejected.reason == "excluded_by_policy" and "unsubscribed" in rejected.detail


def test_a_terminal_member_still_gets_merge_field_updates_it_cannot_be_subscribed_by() -> None:
    h = Harness()
    h.feed(change("000001", Email="jane@example.com"))
    h.feed(_failed("000001", "jane@example.com", "compliance_state"))
    [command] = _of(
        h.feed(change("000001", Email="jane@example.com", Telephone="999")), MailchimpMemberUpsert
    )
    assert command.merge_fields["PHONE"] == "999" and command.action == "upsert"
    assert any("never subscribe" in n for n in command.notes)
    [rejected] = _of(h.feed(change("000001", Email="")), CustomerRejected)
    assert "released" not in rejected.detail  # a terminal member's address is kept


def test_a_forgotten_member_gets_no_more_upserts() -> None:
    h = Harness()
    h.feed(change("000001", Email="gone@example.com"))
    h.feed(_failed("000001", "gone@example.com", "forgotten_email_not_subscribed"))
    out = h.feed(change("000001", Email="gone@example.com", Telephone="1"))
    assert not _of(out, MailchimpMemberUpsert)
    assert _of(out, CustomerRejected)[0].reason == "excluded_by_policy"


def test_a_late_result_for_an_older_address_does_not_undo_a_rename() -> None:
    h = Harness()
    h.feed(change("000001", Email="old@example.com"))
    h.feed(change("000001", Email="new@example.com"))
    out = h.feed(_synced("000001", "old@example.com"))
    assert not _of(out, MemberState)
    [command] = _of(h.feed(change("000001", Email="newer@example.com")), MailchimpMemberUpsert)
    assert command.previous_email == "new@example.com"


def test_every_command_carries_the_full_tag_set_so_a_failed_one_heals() -> None:
    h = Harness(config({"tags": {"fixed": ["syspro"]}}))
    h.feed(change("000001", Email="jane@example.com"))
    h.feed(_failed("000001", "jane@example.com", "retries_exhausted"))
    [command] = _of(h.feed(change("000001", Email="jane@example.com", Telephone="3")), MailchimpMemberUpsert)
    assert (command.tags_add, command.tags_remove) == (["syspro"], [])


def test_a_member_found_absent_while_terminal_is_not_created_again() -> None:
    h = Harness()
    h.feed(change("000001", Email="jane@example.com"))
    h.feed(_synced("000001", "jane@example.com", status="unsubscribed"))
    h.feed(_synced("000001", "jane@example.com", status="absent", outcome="unchanged"))
    out = h.feed(change("000001", Email="jane@example.com", Telephone="4"))
    assert not _of(out, MailchimpMemberUpsert)


def test_a_deleted_customer_follows_the_inactive_action_and_frees_its_address() -> None:
    for action, expected in (("tag", "upsert"), ("archive", "archive"), ("unsubscribe", "unsubscribe")):
        h = Harness(config({"policy": {"inactive_action": action}}))
        h.feed(change("000001", Email="jane@example.com"))
        [command] = _of(h.feed(change("000001", kind="deleted")), MailchimpMemberUpsert)
        assert (command.action, command.email_address) == (expected, "jane@example.com")
        if action == "tag":
            assert command.tags_add == ["inactive"] and command.merge_fields == {}
        freed = h.owner("main", "jane@example.com") is None
        assert freed == (action != "unsubscribe"), action


def test_a_deleted_customer_never_synced_produces_nothing() -> None:
    assert Harness().feed(change("000404", kind="deleted")) == []


def test_every_audience_of_the_connection_gets_its_own_command() -> None:
    h = Harness(
        config(
            {"id": "retail", "list_id": "L1"}, {"id": "trade", "list_id": "L2", "status_if_new": "pending"}
        )
    )
    commands = _of(h.feed(change("000001")), MailchimpMemberUpsert)
    assert [(c.audience_id, c.list_id, c.status_if_new) for c in commands] == [
        ("retail", "L1", "subscribed"),
        ("trade", "L2", "pending"),
    ]


def test_a_change_for_an_unknown_connection_is_rejected_as_unmappable() -> None:
    [rejected] = Harness().feed(change("000001", connection_id="other"))
    assert isinstance(rejected, CustomerRejected) and rejected.reason == "unmappable"


def test_memory_is_rolled_back_when_a_record_fails_and_when_the_transaction_aborts() -> None:
    h = Harness()
    h.feed(change("000001", Email="first@example.com"))
    mapper = h.pipeline.plans[CONNECTION].audiences[0].mapper
    original = mapper.map

    def map_or_fail(row: dict[str, Any]) -> Any:
        if row["Customer"] == "boom":
            raise RuntimeError("bug")
        return original(row)

    object.__setattr__(mapper, "map", map_or_fail)
    batch = [change("000002", Email="second@example.com"), change("boom", Email="third@example.com")]
    records = [record(encode(e), CUSTOMER_CHANGED.name, 0, i) for i, e in enumerate(batch)]
    with pytest.raises(RuntimeError):
        h.pipeline.handle(records)
    assert h.owner("main", "second@example.com") is None  # the whole call was undone
    h.pipeline.handle(records[:1])  # the processor re-runs the batch record by record
    assert h.owner("main", "second@example.com") == "000002"
    h.tables.rollback()  # ...and its transaction aborts
    assert h.owner("main", "second@example.com") is None
    assert h.owner("main", "first@example.com") == "000001"
    assert h.tables.member(0, f"{CONNECTION}:000002") is None


def test_a_wake_lost_with_an_aborted_transaction_is_done_again() -> None:
    h = Harness()
    h.feed(change("000001", Email="shared@example.com"), change("000002", Email="shared@example.com"))
    key = f"{CONNECTION}:main:{subscriber_hash('shared@example.com')}"
    h.tables.apply_committed(key, None, own=False)  # another instance freed it
    h.pipeline.freed_elsewhere.append(key)
    assert any(o.topic == "mailchimp.member.upsert.v1" for o in h.pipeline.handle([]))
    h.tables.rollback()  # the transaction aborted
    h.pipeline.end_transaction(committed=False)
    assert h.owner("main", "shared@example.com") is None
    [command] = _of(h.feed_records([]), MailchimpMemberUpsert)
    assert (command.customer, command.email_address) == ("000002", "shared@example.com")
    assert h.owner("main", "shared@example.com") == "000002"
