"""The audit store's contract, run unchanged against SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from services.audit import queries
from services.audit.models import Filters
from services.audit.reconcile import reconcile
from services.audit.schema import customers, events, metadata, runs, sync_state
from services.audit.store import AuditStore
from shared.codec import encode
from shared.events import Event
from shared.topics import CUSTOMER_CHANGED, DEAD_LETTER, MEMBER_UPSERT
from tests.audit.factories import Flow, Records


def _count(store: AuditStore, table=events, *where) -> int:  # type: ignore[no-untyped-def]
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _states(store: AuditStore, customer: str) -> dict[str, tuple[str, str | None]]:
    page = queries.customer_states(store.engine, Filters(customers=[customer]))
    return {s.audience_id: (s.status, s.reason) for s in page.items}


class TestStoreContract:
    def test_schema_matches_the_latest_migration(self, store: AuditStore) -> None:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []

    def test_opening_twice_migrates_once_and_keeps_the_rows(self, db_url: str) -> None:
        flow, recs = Flow(), Records()
        first = AuditStore.open(db_url)
        first.append(recs.many([flow.change("C1")]))
        first.close()
        second = AuditStore.open(db_url)
        try:
            assert _count(second) == 1
        finally:
            second.close()

    def test_a_batch_delivered_twice_is_stored_once(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1")
        command = flow.command(change)
        batch = recs.many([change, command, flow.synced(command)])
        first = store.append(batch)
        again = store.append(batch)
        assert (first.stored, again.stored, again.already_stored) == (3, 0, 3)
        assert _count(store) == 3
        assert _count(store, runs) == 1
        with store.engine.connect() as conn:
            assert conn.scalar(select(runs.c.commands)) == 1

    def test_positions_are_the_last_stored_offset_of_each_partition(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        batch = [recs.of(flow.change(f"C{i}"), partition=i % 2) for i in range(5)]
        store.append(batch[:3])
        store.append(batch[2:])
        assert store.positions() == {(CUSTOMER_CHANGED.name, 0): 2, (CUSTOMER_CHANGED.name, 1): 1}
        assert _count(store) == 5

    def test_garbage_is_stored_with_the_codec_reason_and_never_stops_the_batch(
        self, store: AuditStore
    ) -> None:
        flow, recs = Flow(), Records()
        batch = [
            recs.raw(CUSTOMER_CHANGED.name, b"\x00\xffnot json", key=b"acme:BAD1"),
            recs.raw(CUSTOMER_CHANGED.name, b'{"event_type": "Nope", "schema_version": 1}', key=b"acme:BAD2"),
            recs.raw(CUSTOMER_CHANGED.name, None, key=b"acme:BAD3"),
            recs.of(flow.change("C1")),
        ]
        result = store.append(batch)
        assert (result.stored, result.undecodable) == (4, 3)
        page = queries.list_events(store.engine, Filters(), kinds=["undecodable"])
        reasons = {e.customer: e.reason for e in page.items}
        assert reasons == {"BAD1": "not_json", "BAD2": "unknown_event_type", "BAD3": "not_json"}
        raw = {e.customer: e.raw for e in page.items}
        assert raw["BAD1"] == "\x00\\xffnot json"

    def test_a_repeated_event_id_is_kept_as_a_duplicate_and_changes_no_read_model(
        self, store: AuditStore
    ) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1")
        store.append([recs.of(change)])
        result = store.append([recs.of(change), recs.of(change)])
        assert (result.stored, result.duplicates) == (2, 2)
        assert _count(store) == 3
        assert _count(store, events, events.c.kind == "duplicate") == 2
        with store.engine.connect() as conn:
            assert conn.scalar(select(runs.c.changes)) == 1

    def test_a_dead_lettered_command_fails_its_customer_with_the_reason(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1")
        command = flow.command(change)
        headers = (
            ("mlc.error.topic", f"ns.{MEMBER_UPSERT.name}".encode()),
            ("mlc.error.stage", b"loader"),
            ("mlc.error.reason", b"processing_error"),
            ("mlc.error.message", b"KeyError: 'list'"),
        )
        store.namespace = "ns."
        store.append(recs.many([change, command]))
        store.append([recs.raw(DEAD_LETTER.name, encode(command), key=command.key(), headers=headers)])
        assert _states(store, "C1") == {"retail": ("failed", "dead_letter:processing_error")}
        line = queries.timeline(store.engine, "C1")
        dead = [e for e in line.entries if e.kind == "dead_letter"]
        assert len(dead) == 1 and dead[0].parent == str(command.event_id)
        assert "dead-lettered by loader" in dead[0].summary
        groups = queries.failures(store.engine, Filters())
        assert any(g.source == "dead_letter" and g.topic == MEMBER_UPSERT.name for g in groups)

    def test_sync_state_follows_command_result_and_replay(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1")
        command = flow.command(change)
        store.append(recs.many([change, command]))
        assert _states(store, "C1") == {"retail": ("pending", None)}
        store.append(recs.many([flow.failed(command, reason="invalid_resource")]))
        assert _states(store, "C1") == {"retail": ("failed", "invalid_resource")}
        replay = command.model_copy(
            update={"event_id": uuid.uuid4(), "replay_of": command.event_id, "occurred_at": flow.tick()}
        )
        store.append(recs.many([replay]))
        assert _states(store, "C1") == {"retail": ("pending", None)}
        store.append(recs.many([flow.synced(replay)]))
        assert _states(store, "C1") == {"retail": ("in_sync", None)}

    def test_a_result_seen_before_its_command_is_matched_when_the_command_arrives(
        self, store: AuditStore
    ) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1")
        first = flow.command(change)
        store.append(recs.many([change, first, flow.synced(first)]))
        second = flow.command(change, email="new@example.com")
        store.append(recs.many([flow.failed(second, reason="compliance_state")]))
        assert _states(store, "C1") == {"retail": ("pending", None)}
        store.append(recs.many([second]))
        assert _states(store, "C1") == {"retail": ("failed", "compliance_state")}

    def test_rejections_for_every_audience_give_way_to_newer_commands(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1", email="not-an-email")
        store.append(recs.many([change, flow.rejected(change, reason="invalid_email")]))
        assert _states(store, "C1") == {"*": ("rejected", "invalid_email")}
        fixed = flow.change("C1", email="jane@example.com", change="updated")
        command = flow.command(fixed)
        store.append(recs.many([fixed, command, flow.synced(command)]))
        assert _states(store, "C1") == {"retail": ("in_sync", None)}
        excluded = flow.rejected(fixed, reason="excluded_by_policy", audience_id="retail")
        store.append(recs.many([excluded]))
        assert _states(store, "C1") == {"retail": ("excluded", "excluded_by_policy")}

    def test_a_rejection_for_every_audience_marks_the_customers_existing_audiences(
        self, store: AuditStore
    ) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1")
        a, b = flow.command(change, audience_id="retail"), flow.command(change, audience_id="trade")
        store.append(recs.many([change, a, b, flow.synced(a), flow.synced(b)]))
        gone = flow.change("C1", email="", change="updated")
        store.append(recs.many([gone, flow.rejected(gone, reason="no_email")]))
        assert _states(store, "C1") == {
            "*": ("rejected", "no_email"),
            "retail": ("rejected", "no_email"),
            "trade": ("rejected", "no_email"),
        }

    def test_timeline_links_change_command_and_result_with_the_mailchimp_response(
        self, store: AuditStore
    ) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C123")
        command = flow.command(change)
        failed = flow.failed(command)
        store.append(recs.many([change, command, failed, flow.run_completed()]))
        line = queries.timeline(store.engine, "C123", connection="acme")
        assert [(e.event_type, e.depth) for e in line.entries] == [
            ("CustomerChanged", 0),
            ("MailchimpMemberUpsert", 1),
            ("MemberSyncFailed", 2),
        ]
        assert line.entries[2].response == {
            "title": "Invalid Resource",
            "status": 400,
            "detail": "Please provide a valid email.",
        }
        assert [r.run_id for r in line.runs] == [str(flow.run_id)]
        assert line.runs[0].status == "completed" and (line.runs[0].changes, line.runs[0].failed) == (1, 1)

    def test_runs_count_what_descended_from_each_run(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        batch: list[Event] = []
        for i in range(4):
            change = flow.change(f"C{i}")
            command = flow.command(change)
            batch += [change, command, flow.synced(command) if i else flow.failed(command)]
        store.append(recs.many(batch[:5]))
        store.append(recs.many([*batch[5:], flow.run_completed(created=4)]))
        run = queries.find_run(store.engine, str(flow.run_id))
        assert run is not None
        assert (run.kind, run.status, run.created) == ("poll", "completed", 4)
        assert (run.changes, run.commands, run.synced, run.failed) == (4, 4, 3, 1)

    def test_states_filter_and_page(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        batch: list[Event] = []
        for i in range(7):
            change = flow.change(f"C{i}")
            command = flow.command(change)
            batch += [change, command, flow.failed(command, reason="r1" if i % 2 else "r2")]
        store.append(recs.many(batch))
        failed_r1 = Filters(statuses=["failed"], reason="r1")
        first = queries.customer_states(store.engine, failed_r1, limit=2)
        second = queries.customer_states(store.engine, failed_r1, limit=2, offset=first.next_offset or 0)
        assert [s.customer for s in first.items + second.items] == ["C5", "C3", "C1"]
        assert second.next_offset is None
        since = Filters(since=flow.clock - timedelta(seconds=5))
        assert [s.customer for s in queries.customer_states(store.engine, since).items] == ["C6", "C5"]

    def test_failures_are_grouped_by_reason_with_examples(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        batch: list[Event] = []
        for i in range(3):
            change = flow.change(f"C{i}")
            batch += [change, flow.rejected(change, reason="invalid_email")]
        store.append(recs.many(batch))
        groups = queries.failures(store.engine, Filters())
        assert [(g.status, g.reason, g.count) for g in groups] == [("rejected", "invalid_email", 3)]
        assert sorted(groups[0].customers) == ["C0", "C1", "C2"]

    def test_reconcile_finds_missing_extra_and_mismatched_members(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        ok, missing, renamed, deleted = (flow.change(c) for c in ("OK", "MISSING", "RENAMED", "DELETED"))
        batch: list[Event] = [ok, missing, renamed, deleted]
        for change in (ok, renamed, deleted):
            command = flow.command(change)
            batch += [command, flow.synced(command)]
        batch += [flow.rejected(missing, reason="invalid_email")]
        rename = flow.command(renamed, email="new.address@example.com")
        batch += [rename, flow.failed(rename, reason="member_exists")]
        batch += [flow.change("DELETED", change="deleted")]
        store.append(recs.many(batch))
        [report] = reconcile(store.engine, connection="acme")
        assert (report.customers_seen, report.members_synced) == (3, 3)
        assert [(m.customer, m.status, m.reason) for m in report.missing] == [
            ("MISSING", "rejected", "invalid_email")
        ]
        assert report.missing_by_status == {"rejected": 1}
        assert [m.customer for m in report.extra] == ["DELETED"]
        assert [(m.customer, m.email_address, m.member_email) for m in report.mismatched] == [
            ("RENAMED", "new.address@example.com", "renamed@example.com")
        ]
        assert _count(store, customers, customers.c.deleted.is_(True)) == 1

    def test_read_models_are_written_with_the_rows(self, store: AuditStore) -> None:
        flow, recs = Flow(), Records()
        change = flow.change("C1")
        store.append(recs.many([change, flow.command(change)]))
        assert (_count(store), _count(store, sync_state), _count(store, customers)) == (2, 1, 1)
