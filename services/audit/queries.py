"""Read models over the audit store: what the API, the command line and replay ask.

Every function takes an engine and returns pydantic models (``services.audit.models``); lists are
paged with limit/offset and ordered so pages are stable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, func, or_, select

from .models import CustomerState, FailureGroup, Filters, Page, RunSummary, StoredEvent, Timeline
from .schema import events, runs, sync_state
from .timeline import build_entries

__all__ = [
    "MAX_LIMIT",
    "customer_states",
    "failures",
    "find_run",
    "list_events",
    "list_runs",
    "timeline",
]

MAX_LIMIT = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _page(items: list[Any], limit: int, offset: int) -> Page[Any]:
    """``items`` was fetched with ``limit + 1`` rows: the extra one says whether a next page exists."""
    more = len(items) > limit
    return Page(items=items[:limit], limit=limit, offset=offset, next_offset=offset + limit if more else None)


def _state_conditions(f: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.connection:
        conditions.append(sync_state.c.connection_id == f.connection)
    if f.audience:
        conditions.append(sync_state.c.audience_id == f.audience)
    if f.customers:
        conditions.append(sync_state.c.customer.in_(f.customers))
    if f.statuses:
        conditions.append(sync_state.c.status.in_(f.statuses))
    if f.reason:
        conditions.append(sync_state.c.reason == f.reason)
    if f.since:
        conditions.append(sync_state.c.updated_at >= f.since)
    if f.until:
        conditions.append(sync_state.c.updated_at < f.until)
    return conditions


def _state(row: Any) -> CustomerState:
    return CustomerState.model_validate(dict(row))


def customer_states(
    engine: Engine, filters: Filters, limit: int = 100, offset: int = 0
) -> Page[CustomerState]:
    """Sync state per customer and audience, most recently changed first."""
    query = (
        select(sync_state)
        .where(*_state_conditions(filters))
        .order_by(
            sync_state.c.updated_at.desc(),
            sync_state.c.connection_id,
            sync_state.c.customer,
            sync_state.c.audience_id,
        )
        .limit(limit + 1)
        .offset(offset)
    )
    with engine.connect() as conn:
        items = [_state(r) for r in conn.execute(query).mappings()]
    return _page(items, limit, offset)


def timeline(engine: Engine, customer: str, connection: str | None = None, limit: int = 2000) -> Timeline:
    """Everything stored about one customer, as a causal tree, with the runs involved and the states."""
    conditions = [events.c.customer == customer]
    if connection:
        conditions.append(events.c.connection_id == connection)
    query = select(events).where(*conditions).order_by(events.c.occurred_at, events.c.id).limit(limit)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        run_ids = sorted({r["correlation_id"] for r in rows if r.get("correlation_id")})
        run_rows = [
            RunSummary.model_validate(dict(r))
            for r in conn.execute(select(runs).where(runs.c.run_id.in_(run_ids))).mappings()
        ]
        state_filter = Filters(connection=connection, customers=[customer])
        states = [
            _state(r)
            for r in conn.execute(
                select(sync_state).where(*_state_conditions(state_filter)).order_by(sync_state.c.audience_id)
            ).mappings()
        ]
    run_rows.sort(key=lambda r: (r.started_at or r.first_event_at or _EPOCH, r.run_id))
    return Timeline(
        connection_id=connection, customer=customer, entries=build_entries(rows), states=states, runs=run_rows
    )


def failures(engine: Engine, filters: Filters, examples: int = 5) -> list[FailureGroup]:
    """Failing customers grouped by status and reason, then problem records by kind, topic and reason."""
    statuses = filters.statuses or ["failed", "rejected", "excluded"]
    conditions = _state_conditions(filters.model_copy(update={"statuses": statuses}))
    groups: list[FailureGroup] = []
    with engine.connect() as conn:
        grouped = conn.execute(
            select(
                sync_state.c.status,
                sync_state.c.reason,
                func.count().label("n"),
                func.min(sync_state.c.updated_at).label("first_at"),
                func.max(sync_state.c.updated_at).label("last_at"),
            )
            .where(*conditions)
            .group_by(sync_state.c.status, sync_state.c.reason)
            .order_by(func.count().desc(), sync_state.c.status, sync_state.c.reason)
        ).all()
        for g in grouped:
            reason_match = (
                sync_state.c.reason == g.reason if g.reason is not None else sync_state.c.reason.is_(None)
            )
            sample = conn.scalars(
                select(sync_state.c.customer)
                .where(*conditions, sync_state.c.status == g.status, reason_match)
                .order_by(sync_state.c.updated_at.desc())
                .limit(examples)
            ).all()
            groups.append(
                FailureGroup(
                    source="sync",
                    status=g.status,
                    reason=g.reason,
                    count=g.n,
                    customers=list(sample),
                    first_at=g.first_at,
                    last_at=g.last_at,
                )
            )
        groups.extend(_problem_records(conn, filters, examples))
    return groups


def _problem_records(conn: Any, filters: Filters, examples: int) -> list[FailureGroup]:
    if filters.statuses and not set(filters.statuses) & {"dead_letter", "undecodable", "duplicate"}:
        return []
    conditions = [events.c.kind != "event", *_event_conditions(filters)]
    topic = func.coalesce(events.c.source_topic, events.c.topic)
    grouped = conn.execute(
        select(
            events.c.kind,
            topic.label("topic"),
            events.c.reason,
            func.count().label("n"),
            func.min(events.c.occurred_at).label("first_at"),
            func.max(events.c.occurred_at).label("last_at"),
        )
        .where(*conditions)
        .group_by(events.c.kind, topic, events.c.reason)
        .order_by(func.count().desc())
    ).all()
    groups = []
    for g in grouped:
        sample = conn.scalars(
            select(events.c.customer)
            .where(
                *conditions,
                events.c.kind == g.kind,
                topic == g.topic,
                events.c.reason == g.reason,
                events.c.customer.is_not(None),
            )
            .distinct()
            .limit(examples)
        ).all()
        groups.append(
            FailureGroup(
                source=g.kind,
                status=g.kind,
                reason=g.reason,
                topic=g.topic,
                count=g.n,
                customers=list(sample),
                first_at=g.first_at,
                last_at=g.last_at,
            )
        )
    return groups


def _event_conditions(f: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.connection:
        conditions.append(events.c.connection_id == f.connection)
    if f.audience:
        conditions.append(events.c.audience_id == f.audience)
    if f.customers:
        conditions.append(events.c.customer.in_(f.customers))
    if f.reason:
        conditions.append(events.c.reason == f.reason)
    if f.since:
        conditions.append(events.c.occurred_at >= f.since)
    if f.until:
        conditions.append(events.c.occurred_at < f.until)
    return conditions


def list_runs(engine: Engine, filters: Filters, limit: int = 50, offset: int = 0) -> Page[RunSummary]:
    """Poll runs and replays, newest first, with the counts of what descended from each."""
    conditions: list[ColumnElement[bool]] = []
    if filters.connection:
        conditions.append(runs.c.connection_id == filters.connection)
    if filters.statuses:
        conditions.append(or_(runs.c.status.in_(filters.statuses), runs.c.kind.in_(filters.statuses)))
    if filters.since:
        conditions.append(runs.c.first_event_at >= filters.since)
    if filters.until:
        conditions.append(runs.c.first_event_at < filters.until)
    query = (
        select(runs)
        .where(*conditions)
        .order_by(runs.c.first_event_at.desc(), runs.c.run_id)
        .limit(limit + 1)
        .offset(offset)
    )
    with engine.connect() as conn:
        items = [RunSummary.model_validate(dict(r)) for r in conn.execute(query).mappings()]
    return _page(items, limit, offset)


def find_run(engine: Engine, run_id: str) -> RunSummary | None:
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.run_id == run_id)).mappings().first()
    return RunSummary.model_validate(dict(row)) if row else None


def list_events(
    engine: Engine,
    filters: Filters,
    kinds: Sequence[str] = (),
    topic: str | None = None,
    event_type: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[StoredEvent]:
    """The raw audit log, newest first (``kinds`` e.g. ``undecodable``, ``dead_letter``)."""
    conditions = _event_conditions(filters)
    if kinds:
        conditions.append(events.c.kind.in_(list(kinds)))
        if "event" not in kinds:
            conditions.append(events.c.kind != "event")  # lets the partial index serve the query
    if topic:
        conditions.append(or_(events.c.topic == topic, events.c.source_topic == topic))
    if event_type:
        conditions.append(events.c.event_type == event_type)
    query = (
        select(events)
        .where(*conditions)
        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    with engine.connect() as conn:
        items = [_stored_event(r) for r in conn.execute(query).mappings()]
    return _page(items, limit, offset)


def _stored_event(row: Any) -> StoredEvent:
    data = dict(row)
    data["row_id"] = data.pop("id")
    data["partition"] = data.pop("kafka_partition")
    data["offset"] = data.pop("kafka_offset")
    payload, headers, raw = data.pop("payload"), data.pop("headers"), data.pop("raw")
    data["payload"] = orjson.loads(payload) if payload else None
    data["headers"] = orjson.loads(headers) if headers else None
    data["raw"] = bytes(raw).decode("utf-8", "backslashreplace") if raw is not None else None
    return StoredEvent.model_validate(data)
