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
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Boolean, Dialect, Engine, and_, bindparam, case, delete, func, select
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
from .database import (
    WRITE,
    SchemaError,
    check_schema,
    insert_statement,
    make_engine,
    migrate,
    upsert_statement,
)
from .projection import ConsumedRecord, Projected, project_records
from .schema import UtcDateTime, customers, events, positions, runs, sync_state
from .sync_state import FIELDS as STATE_FIELDS
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


_EVENT_COLUMNS = tuple(c.name for c in events.c if c.name != "id")
_STATE_KEYS = ("connection_id", "customer", "audience_id")
_COUNTERS = ("changes", "commands", "synced", "failed", "rejected", "dead_letters")
_FACTS = (
    "run_id",
    "status",
    "strategy",
    "full_scan",
    "started_at",
    "finished_at",
    "rows_read",
    "odata_requests",
    "created",
    "updated",
    "deleted",
    "reason",
    "detail",
)
_TIMESTAMP = UtcDateTime()
_STATE_DATES = tuple(
    i for i, name in enumerate(STATE_FIELDS) if isinstance(sync_state.c[name].type, UtcDateTime)
)
_STATE_BOOLS = tuple(i for i, name in enumerate(STATE_FIELDS) if isinstance(sync_state.c[name].type, Boolean))


class _Statements:
    """The write path's statements, compiled once per store for its dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.events = insert_statement(dialect, events, _EVENT_COLUMNS, skip_conflicts_on="event_id")
        self.duplicates = insert_statement(dialect, events, _EVENT_COLUMNS)
        self.event_values = self.events.getter()
        self.sync_state = upsert_statement(dialect, sync_state, STATE_FIELDS, keys=_STATE_KEYS)
        self.state_values = operator.attrgetter(*self.sync_state.columns)
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        # Raw SQL (values bound, names the table's own): the rows are read for nearly every record, and
        # SQLAlchemy's per-value result processing cost more than the query.
        columns = ", ".join(STATE_FIELDS)
        self.load_states = f"SELECT {columns} FROM sync_state WHERE connection_id = {mark} AND customer IN "  # noqa: S608
        self.mark = mark
        self.customers = upsert_statement(
            dialect,
            customers,
            tuple(c.name for c in customers.c),
            keys=("connection_id", "customer"),
            set_={
                name: (lambda excluded, name=name: excluded[name])
                for name in ("last_change", "deleted", "row_hash", "change_id", "changed_at")
            },
        )
        set_: dict[str, Any] = {
            name: (lambda excluded, name=name: runs.c[name] + excluded[name]) for name in _COUNTERS
        }
        set_["kind"] = lambda excluded: func.coalesce(runs.c.kind, excluded.kind)
        set_["connection_id"] = lambda excluded: func.coalesce(runs.c.connection_id, excluded.connection_id)
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
        tally_columns = ("run_id", "kind", "connection_id", "first_event_at", "last_event_at", *_COUNTERS)
        self.run_tallies = upsert_statement(dialect, runs, tally_columns, keys=("run_id",), set_=set_)
        # The tallies create the run's row; the facts fill in what the poller said about it.
        self.run_facts = upsert_statement(
            dialect,
            runs,
            _COUNTERS + _FACTS,
            keys=("run_id",),
            set_={name: (lambda excluded, name=name: excluded[name]) for name in _FACTS[1:]},
        )
        self.positions = upsert_statement(
            dialect,
            positions,
            ("topic", "kafka_partition", "kafka_offset", "updated_at"),
            keys=("topic", "kafka_partition"),
        )


class AuditStore:
    """The audit database: ``append`` batches of consumed records, read ``positions`` back.

    Built from a URL (``AuditSettings.db_url``) or an existing engine. Thread-safe as SQLAlchemy
    engines are; the projection calls ``append`` from one worker thread.
    """

    def __init__(self, engine: Engine, namespace: str = "") -> None:
        self.engine = engine
        self.namespace = namespace
        self._writer = engine.execution_options(**WRITE)
        self._compiled: _Statements | None = None

    def _statements(self, conn: Connection) -> _Statements:
        if self._compiled is None or self._compiled.dialect is not conn.dialect:
            self._compiled = _Statements(conn.dialect)
        return self._compiled

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
        self._statements(conn).positions.run_mappings(
            conn,
            [
                {"topic": t, "kafka_partition": p, "kafka_offset": o, "updated_at": now}
                for (t, p), o in sorted(result.positions.items())
            ],
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
        sql = self._statements(conn)
        values = sql.event_values
        written = sql.events.run(conn, [values(p.row) for p in fresh])
        if written == len(fresh):
            return duplicates
        skipped = self._skipped(conn, fresh)
        for item in skipped:
            _as_duplicate(item)
        sql.duplicates.run_mappings(conn, [p.row for p in skipped])
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
        sql = self._statements(conn)
        states = self._load_states(conn, sql, wanted)
        changed, deleted = apply_events(states, changes)
        values = sql.state_values
        sql.sync_state.run(conn, [values(states[(c, k)][a]) for c, k, a in sorted(changed)])
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

    def _load_states(self, conn: Connection, sql: _Statements, wanted: dict[str, set[str]]) -> CustomerStates:
        """Every stored ``sync_state`` row of the wanted customers."""
        states: CustomerStates = {}
        to_time = _TIMESTAMP.process_result_value
        for connection_id, codes in wanted.items():
            for chunk in _chunks(sorted(codes)):
                query = sql.load_states + "(" + ", ".join([sql.mark] * len(chunk)) + ")"
                for raw in conn.exec_driver_sql(query, (connection_id, *chunk)):
                    values = list(raw)
                    for i in _STATE_DATES:
                        values[i] = to_time(values[i], conn.dialect)
                    for i in _STATE_BOOLS:
                        values[i] = bool(values[i])
                    state = SyncState(*values)
                    states.setdefault((state.connection_id, state.customer), {})[state.audience_id] = state
        return states

    def _update_customers(self, conn: Connection, fresh: list[Projected]) -> None:
        rows = customer_rows(p.event for p in fresh if p.event is not None)
        self._statements(conn).customers.run_mappings(conn, rows)

    def _update_runs(self, conn: Connection, fresh: list[Projected]) -> None:
        sql = self._statements(conn)
        tallies = run_tallies(fresh)
        sql.run_tallies.run_mappings(conn, [t.as_row() for t in tallies.values()])
        facts = run_facts(p.event for p in fresh if p.event is not None)
        sql.run_facts.run_mappings(conn, [{**_ZERO_COUNTERS, **fact} for fact in facts])


def _as_duplicate(item: Projected) -> None:
    item.row.update(kind="duplicate", event_id=None, ref_event_id=item.row["event_id"])
    item.event = None


_ZERO_COUNTERS = dict.fromkeys(("changes", "commands", "synced", "failed", "rejected", "dead_letters"), 0)
