"""The audit store's write path: a consumed batch becomes rows, read models and positions, in one
SQL transaction.

Idempotence, in the spirit of eventsourcing's tracking records: the last stored offset of every
partition is saved with the rows, so a record at or below it is known to be stored and is skipped,
and the unique constraints (position; event id) stop anything that slips through. A crash before the
commit loses rows and positions together, so the records are read again; after it, the consumer
seeks past them. Either way, one row per record.

A record whose ``event_id`` is already stored under another position (a producer that sent twice) is
still stored, as kind ``duplicate`` pointing at the first, and changes no read model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, bindparam, case, delete, func, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError

from shared.events import (
    CustomerRejected,
    Event,
    MailchimpMemberUpsert,
    MemberSynced,
    MemberSyncFailed,
    utcnow,
)

from .aggregates import customer_rows, run_facts, run_tallies
from .database import WRITE, SchemaError, check_schema, insert_many, make_engine, migrate, upsert
from .projection import ConsumedRecord, Projected, project_records
from .schema import customers, events, positions, runs, sync_state
from .sync_state import CustomerStates, SyncState, apply_events

__all__ = ["AppendResult", "AuditStore"]

log = logging.getLogger(__name__)

_CHUNK = 500
_STATE_EVENTS = (MailchimpMemberUpsert, MemberSynced, MemberSyncFailed, CustomerRejected)
Position = tuple[str, int]


@dataclass
class AppendResult:
    """What one ``append`` did."""

    stored: int = 0
    already_stored: int = 0
    duplicates: int = 0
    undecodable: int = 0
    dead_letters: int = 0
    #: Per (topic, partition): the offset of the last record now stored.
    positions: dict[Position, int] = field(default_factory=dict)
    #: Stored rows per (topic, kind), for metrics.
    by_kind: dict[tuple[str, str], int] = field(default_factory=dict)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AuditStore:
    """The audit database: ``append`` batches of consumed records, read ``positions`` back.

    Built from a URL (``AuditSettings.db_url``) or an existing engine. Thread-safe as SQLAlchemy
    engines are; the projection calls ``append`` from one worker thread.
    """

    def __init__(self, engine: Engine, namespace: str = "") -> None:
        self.engine = engine
        self.namespace = namespace
        self._writer = engine.execution_options(**WRITE)

    @classmethod
    def open(cls, url: str, *, namespace: str = "", create: bool = True) -> AuditStore:
        """Connect; migrate to the latest schema when ``create``, else check it is there (and create
        nothing: a mistyped SQLite path is an error, not a new empty database)."""
        parsed = make_url(url)
        file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if not create and file and file != ":memory:" and not Path(file).exists():
            raise SchemaError(f"no audit database at {file} (is MLC_AUDIT_DB_URL right?)")
        engine = make_engine(url)
        if create:
            migrate(engine)
        else:
            check_schema(engine)
        return cls(engine, namespace)

    def close(self) -> None:
        self.engine.dispose()

    # --- positions ----------------------------------------------------------------------------------

    def positions(self) -> dict[Position, int]:
        """The last stored offset of every partition the store has seen."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(positions.c.topic, positions.c.kafka_partition, positions.c.kafka_offset)
            )
            return {(r.topic, r.kafka_partition): r.kafka_offset for r in rows}

    def _locked_positions(self, conn: Connection, wanted: set[Position]) -> dict[Position, int]:
        topics = sorted({t for t, _ in wanted})
        query = select(positions.c.topic, positions.c.kafka_partition, positions.c.kafka_offset).where(
            positions.c.topic.in_(topics)
        )
        if conn.dialect.name == "postgresql":
            # Two writers for one partition (a rebalance overlap) queue here instead of racing.
            query = query.with_for_update()
        return {(r.topic, r.kafka_partition): r.kafka_offset for r in conn.execute(query)}

    # --- the write path -----------------------------------------------------------------------------

    def append(self, records: Sequence[ConsumedRecord], attempts: int = 3) -> AppendResult:
        """Store a batch (rows, read models, positions) in one transaction; idempotent."""
        if not records:
            return AppendResult()
        projected = project_records(records, utcnow(), self.namespace)
        for attempt in range(1, attempts + 1):
            try:
                with self._writer.begin() as conn:
                    return self._append(conn, projected)
            except IntegrityError:
                # Another writer stored some of these first; the next attempt sees its positions.
                if attempt == attempts:
                    raise
                log.warning(
                    "concurrent write to the audit store; retrying the batch", extra={"attempt": attempt}
                )
        raise AssertionError("unreachable")

    def _append(self, conn: Connection, projected: list[Projected]) -> AppendResult:
        result = AppendResult()
        stored = self._locked_positions(conn, {(p.row["topic"], p.row["kafka_partition"]) for p in projected})
        fresh: list[Projected] = []
        for item in projected:
            position = (item.row["topic"], item.row["kafka_partition"])
            offset = item.row["kafka_offset"]
            if offset <= stored.get(position, -1):
                result.already_stored += 1
                continue
            stored[position] = offset
            result.positions[position] = offset
            fresh.append(item)
        if not fresh:
            return result
        result.duplicates = self._insert_rows(conn, fresh)
        self._update_sync_state(conn, fresh)
        self._update_customers(conn, fresh)
        self._update_runs(conn, fresh)
        now = utcnow()
        upsert(
            conn,
            positions,
            [
                {"topic": t, "kafka_partition": p, "kafka_offset": o, "updated_at": now}
                for (t, p), o in sorted(result.positions.items())
            ],
            keys=("topic", "kafka_partition"),
        )
        for item in fresh:
            kind = item.row["kind"]
            result.stored += 1
            result.undecodable += kind == "undecodable"
            result.dead_letters += kind == "dead_letter"
            key = (item.row["topic"], kind)
            result.by_kind[key] = result.by_kind.get(key, 0) + 1
        return result

    def _insert_rows(self, conn: Connection, fresh: list[Projected]) -> int:
        """Insert the rows; those repeating a stored event id become ``duplicate`` rows (counted).

        The common case costs one statement: rows whose event id conflicts are skipped by the database,
        and only when the written count falls short are the skipped ones found and stored as duplicates.
        """
        seen: set[str] = set()
        duplicates = 0
        for item in fresh:
            event_id = item.row["event_id"]
            if event_id in seen:
                _as_duplicate(item)
                duplicates += 1
            elif event_id is not None:
                seen.add(event_id)
        written = insert_many(conn, events, [p.row for p in fresh], skip_conflicts_on="event_id")
        if written == len(fresh):
            return duplicates
        skipped = self._skipped(conn, fresh)
        for item in skipped:
            _as_duplicate(item)
        insert_many(conn, events, [p.row for p in skipped])
        log.warning("records repeating a stored event id kept as duplicates", extra={"count": len(skipped)})
        return duplicates + len(skipped)

    def _skipped(self, conn: Connection, fresh: list[Projected]) -> list[Projected]:
        """The rows of ``fresh`` the conflict clause did not write (their event id is stored elsewhere)."""
        by_id = {p.row["event_id"]: p for p in fresh if p.row["event_id"] is not None}
        found: dict[str, tuple[str, int, int]] = {}
        for chunk in _chunks(sorted(by_id)):
            query = select(
                events.c.event_id, events.c.topic, events.c.kafka_partition, events.c.kafka_offset
            ).where(events.c.event_id.in_(chunk))
            for r in conn.execute(query):
                found[r.event_id] = (r.topic, r.kafka_partition, r.kafka_offset)
        return [
            p
            for event_id, p in by_id.items()
            if found.get(event_id) != (p.row["topic"], p.row["kafka_partition"], p.row["kafka_offset"])
        ]

    def _update_sync_state(self, conn: Connection, fresh: list[Projected]) -> None:
        # Commands, results, rejections and dead-lettered commands move a customer's sync state.
        changes: list[tuple[Event, str | None]] = []
        for item in fresh:
            if isinstance(item.event, _STATE_EVENTS):
                changes.append((item.event, None))
            elif isinstance(item.dead_letter_of, MailchimpMemberUpsert):
                changes.append((item.dead_letter_of, item.row["reason"]))
        wanted: dict[str, set[str]] = {}
        for event, _ in changes:
            wanted.setdefault(event.connection_id, set()).add(event.__dict__["customer"])
        if not wanted:
            return
        states: CustomerStates = {}
        for connection_id, codes in wanted.items():
            for chunk in _chunks(sorted(codes)):
                query = select(sync_state).where(
                    and_(sync_state.c.connection_id == connection_id, sync_state.c.customer.in_(chunk))
                )
                for row in conn.execute(query).mappings():
                    state = SyncState.from_row(dict(row))
                    states.setdefault((state.connection_id, state.customer), {})[state.audience_id] = state
        changed, deleted = apply_events(states, changes)
        rows = [states[(c, k)][a].as_row() for c, k, a in sorted(changed)]
        upsert(conn, sync_state, rows, keys=("connection_id", "customer", "audience_id"))
        if deleted:
            conn.execute(
                delete(sync_state).where(
                    and_(
                        sync_state.c.connection_id == bindparam("c"),
                        sync_state.c.customer == bindparam("k"),
                        sync_state.c.audience_id == bindparam("a"),
                    )
                ),
                [{"c": c, "k": k, "a": a} for c, k, a in sorted(deleted)],
            )

    def _update_customers(self, conn: Connection, fresh: list[Projected]) -> None:
        rows = customer_rows(p.event for p in fresh if p.event is not None)
        upsert(
            conn,
            customers,
            rows,
            keys=("connection_id", "customer"),
            set_={
                name: (lambda excluded, name=name: excluded[name])
                for name in ("last_change", "deleted", "row_hash", "change_id", "changed_at")
            },
        )

    def _update_runs(self, conn: Connection, fresh: list[Projected]) -> None:
        tallies = run_tallies(fresh)
        if tallies:
            counters = ("changes", "commands", "synced", "failed", "rejected", "dead_letters")
            set_: dict[str, Any] = {
                name: (lambda excluded, name=name: runs.c[name] + excluded[name]) for name in counters
            }
            set_["kind"] = lambda excluded: func.coalesce(runs.c.kind, excluded.kind)
            set_["connection_id"] = lambda excluded: func.coalesce(
                runs.c.connection_id, excluded.connection_id
            )
            set_["first_event_at"] = lambda excluded: case(
                (runs.c.first_event_at.is_(None), excluded.first_event_at),
                (excluded.first_event_at < runs.c.first_event_at, excluded.first_event_at),
                else_=runs.c.first_event_at,
            )
            set_["last_event_at"] = lambda excluded: case(
                (runs.c.last_event_at.is_(None), excluded.last_event_at),
                (excluded.last_event_at > runs.c.last_event_at, excluded.last_event_at),
                else_=runs.c.last_event_at,
            )
            upsert(conn, runs, [t.as_row() for t in tallies.values()], keys=("run_id",), set_=set_)
        facts = run_facts(p.event for p in fresh if p.event is not None)
        if facts:
            # The tallies above created the run's row; fill in what the poller said about it.
            columns = [name for name in facts[0] if name != "run_id"]
            rows = [{**_ZERO_COUNTERS, **fact} for fact in facts]
            set_ = {name: (lambda excluded, name=name: excluded[name]) for name in columns}
            upsert(conn, runs, rows, keys=("run_id",), set_=set_)


def _as_duplicate(item: Projected) -> None:
    item.row.update(kind="duplicate", event_id=None, ref_event_id=item.row["event_id"])
    item.event = None


_ZERO_COUNTERS = dict.fromkeys(("changes", "commands", "synced", "failed", "rejected", "dead_letters"), 0)
