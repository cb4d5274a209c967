"""Pure parts of the audit: records to rows, sync-state derivation, the causal timeline, time parsing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import typer

from services.audit.cli import parse_time
from services.audit.projection import customer_from_key, project_record
from services.audit.sync_state import CustomerStates, apply_events
from services.audit.timeline import build_entries
from shared.codec import encode
from shared.topics import DEAD_LETTER
from tests.audit.factories import Flow, Records

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _status(states: CustomerStates, audience: str = "retail") -> tuple[str, str | None]:
    state = states[("acme", "C1")][audience]
    return state.status, state.reason


def test_keys_name_the_customer_of_an_undecodable_record_when_they_parse() -> None:
    assert customer_from_key(b"acme:000123") == ("acme", "000123")
    assert customer_from_key(b"acme:with:colon") == ("acme", "with:colon")
    assert customer_from_key(b"\xff\xfe") == (None, None)
    assert customer_from_key(b"no-separator") == ("no-separator", None)
    assert customer_from_key(None) == (None, None)


def test_a_dead_letter_keeps_its_headers_and_points_at_its_original() -> None:
    flow, recs = Flow(), Records()
    command = flow.command(flow.change("C1"))
    headers = (
        ("mlc.error.reason", b"invalid_payload"),
        ("mlc.error.topic", b"ns.mailchimp.member.upsert.v1"),
    )
    projected = project_record(recs.raw(DEAD_LETTER.name, encode(command), headers=headers), NOW, "ns.")
    assert projected.row["kind"] == "dead_letter"
    assert projected.row["ref_event_id"] == str(command.event_id) and projected.row["event_id"] is None
    assert projected.row["source_topic"] == "mailchimp.member.upsert.v1"
    assert projected.dead_letter_of == command and projected.event is None


def test_a_rejection_arriving_after_a_newer_command_does_not_win() -> None:
    flow = Flow()
    change = flow.change("C1", email="bad")
    rejection = flow.rejected(change, audience_id="retail")
    command = flow.command(flow.change("C1", change="updated"))
    states: CustomerStates = {}
    apply_events(states, [(command, None), (rejection, None)])
    assert _status(states) == ("pending", None)
    states = {}
    apply_events(states, [(rejection, None), (command, None)])
    assert _status(states) == ("pending", None)


def test_a_result_for_an_older_command_leaves_the_newer_one_pending() -> None:
    flow = Flow()
    change = flow.change("C1")
    first, second = flow.command(change), flow.command(change, email="new@example.com")
    states: CustomerStates = {}
    apply_events(states, [(first, None), (second, None), (flow.synced(first), None)])
    assert _status(states) == ("pending", None)
    state = states[("acme", "C1")]["retail"]
    assert (state.member_email, state.email_address) == ("c1@example.com", "new@example.com")


def test_a_real_result_overrides_a_dead_letter_of_the_same_command_but_not_the_reverse() -> None:
    flow = Flow()
    command = flow.command(flow.change("C1"))
    states: CustomerStates = {}
    apply_events(states, [(command, None), (flow.synced(command), None), (command, "processing_error")])
    assert _status(states) == ("in_sync", None)
    states = {}
    apply_events(states, [(command, None), (command, "processing_error")])
    assert _status(states) == ("failed", "dead_letter:processing_error")


def test_an_archived_member_is_in_sync_but_no_longer_present() -> None:
    flow = Flow()
    command = flow.command(flow.change("C1", change="deleted"), email="c1@example.com", action="archive")
    states: CustomerStates = {}
    apply_events(states, [(command, None), (flow.synced(command, outcome="archived"), None)])
    state = states[("acme", "C1")]["retail"]
    assert (state.status, state.member_present) == ("in_sync", False)


def test_the_timeline_hangs_a_replayed_command_under_its_change_and_its_result_under_it() -> None:
    flow, recs = Flow(), Records()
    change = flow.change("C1")
    command = flow.command(change)
    replay = command.model_copy(update={"event_id": uuid.uuid4(), "replay_of": command.event_id})
    rows = []
    for i, event in enumerate([change, command, flow.failed(command), replay, flow.synced(replay)]):
        row = project_record(recs.of(event), NOW).row
        rows.append({**row, "id": i + 1})
    entries = build_entries(rows)
    assert [(e.event_type, e.depth) for e in entries] == [
        ("CustomerChanged", 0),
        ("MailchimpMemberUpsert", 1),
        ("MemberSyncFailed", 2),
        ("MailchimpMemberUpsert", 1),
        ("MemberSynced", 2),
    ]
    assert "replay of" in entries[3].summary


def test_times_are_iso_or_a_duration_back_from_now() -> None:
    assert parse_time("2025-05-01T08:00:00") == datetime(2025, 5, 1, 8, tzinfo=UTC)
    assert parse_time("2025-05-01T10:00:00+02:00") == datetime(2025, 5, 1, 8, tzinfo=UTC)
    assert parse_time("2025-05-01T08:00:00Z") == datetime(2025, 5, 1, 8, tzinfo=UTC)
    two_hours = parse_time("2h")
    assert two_hours is not None
    assert abs((datetime.now(UTC) - two_hours) - timedelta(hours=2)) < timedelta(seconds=5)
    with pytest.raises(typer.Exit):
        parse_time("yesterday")
