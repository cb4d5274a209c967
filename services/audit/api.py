"""The audit HTTP API (FastAPI): read-only views of the audit store, behind a bearer token.

Every data route needs ``Authorization: Bearer <MLC_AUDIT_API_TOKEN>``; ``/openapi.json`` and
``/docs`` stay open because they describe the API and hold no data. Replay is not offered here: it
writes to Kafka and belongs to the operator's command line (``ml-connector replay``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import queries
from .metrics import API_UNAUTHORIZED
from .models import (
    AudienceReconciliation,
    CustomerState,
    FailureGroup,
    Filters,
    Page,
    RunSummary,
    StoredEvent,
    Timeline,
)
from .reconcile import reconcile

__all__ = ["create_api", "disabled_api"]

EngineProvider = Callable[[], Engine | None]

_bearer = HTTPBearer(auto_error=False, description="The value of MLC_AUDIT_API_TOKEN.")

Limit = Annotated[int, Query(ge=1, le=queries.MAX_LIMIT, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Rows to skip (use the previous page's next_offset).")]
Connection = Annotated[str | None, Query(description="Connection id from the connections file.")]
Audience = Annotated[str | None, Query(description="Audience id from the connections file.")]
Since = Annotated[
    datetime | None, Query(description="From this time (ISO 8601; UTC when no offset is given).")
]
Until = Annotated[
    datetime | None, Query(description="Before this time (ISO 8601; UTC when no offset is given).")
]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _authorized(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    token: SecretStr | None = request.app.state.token
    if token is None:
        return
    expected = token.get_secret_value().encode()
    bearer = credentials is not None and credentials.scheme.lower() == "bearer"
    given = credentials.credentials.encode() if credentials is not None and bearer else b""
    if not secrets.compare_digest(given, expected):
        API_UNAUTHORIZED.inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _store(request: Request) -> Engine:
    engine: Engine | None = request.app.state.engine()
    if engine is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the audit store is not open yet")
    return engine


Store = Annotated[Engine, Depends(_store)]
router = APIRouter(dependencies=[Depends(_authorized)])


def create_api(engine: EngineProvider, token: SecretStr | None) -> FastAPI:
    """The API over the store ``engine()`` returns; ``token`` None means no authentication at all."""
    api = FastAPI(
        title="ml-connector audit",
        version="1",
        description=(
            "What happened to each SYSPRO customer on its way to Mailchimp, and why. "
            "Authenticate with `Authorization: Bearer <MLC_AUDIT_API_TOKEN>`."
        ),
    )
    api.state.engine = engine
    api.state.token = token
    api.include_router(router)
    return api


@router.get("/customers/{customer:path}/timeline", response_model=Timeline, tags=["customers"])
def customer_timeline(customer: str, db: Store, connection: Connection = None) -> Timeline:
    """What happened to a customer: poll, change, command, result, rejections and dead letters, linked
    by causation, with the Mailchimp response of failures and the customer's current state."""
    return queries.timeline(db, customer, connection)


@router.get("/status", response_model=Page[CustomerState], tags=["customers"])
def customer_status(
    db: Store,
    connection: Connection = None,
    audience: Audience = None,
    customer: Annotated[list[str] | None, Query(description="Customer code (repeatable).")] = None,
    status_: Annotated[
        list[str] | None,
        Query(alias="status", description="in_sync, pending, failed, rejected or excluded (repeatable)."),
    ] = None,
    reason: str | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[CustomerState]:
    """Current sync state per customer and audience, most recently changed first."""
    filters = Filters(
        connection=connection,
        audience=audience,
        customers=customer or [],
        statuses=status_ or [],
        reason=reason,
        since=_utc(since),
        until=_utc(until),
    )
    return queries.customer_states(db, filters, limit, offset)


@router.get("/failures", response_model=list[FailureGroup], tags=["failures"])
def failure_groups(
    db: Store,
    connection: Connection = None,
    audience: Audience = None,
    since: Since = None,
    until: Until = None,
) -> list[FailureGroup]:
    """Failed, rejected and excluded customers grouped by reason; then dead letters, undecodable and
    duplicate records grouped by topic and reason."""
    filters = Filters(connection=connection, audience=audience, since=_utc(since), until=_utc(until))
    return queries.failures(db, filters)


@router.get("/runs", response_model=Page[RunSummary], tags=["runs"])
def run_list(
    db: Store,
    connection: Connection = None,
    status_: Annotated[
        list[str] | None, Query(alias="status", description="completed, failed, poll or replay.")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[RunSummary]:
    """Poll runs and replays, newest first, with counts of the changes, commands and results of each."""
    filters = Filters(connection=connection, statuses=status_ or [], since=_utc(since), until=_utc(until))
    return queries.list_runs(db, filters, limit, offset)


@router.get("/runs/{run_id}", response_model=RunSummary, tags=["runs"])
def run_detail(run_id: str, db: Store) -> RunSummary:
    """One run (a poll run id or a replay id)."""
    found = queries.find_run(db, run_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run {run_id}")
    return found


@router.get("/reconcile", response_model=list[AudienceReconciliation], tags=["reconciliation"])
def reconciliation(
    db: Store,
    connection: Connection = None,
    audience: Audience = None,
    limit: Annotated[
        int, Query(ge=0, le=queries.MAX_LIMIT, description="Customers listed per category.")
    ] = 50,
) -> list[AudienceReconciliation]:
    """SYSPRO customers seen vs members last seen in each Mailchimp audience: missing, extra and
    mismatched email."""
    return reconcile(db, connection, audience, limit)


@router.get("/events", response_model=Page[StoredEvent], tags=["events"])
def event_log(
    db: Store,
    connection: Connection = None,
    customer: Annotated[list[str] | None, Query(description="Customer code (repeatable).")] = None,
    kind: Annotated[
        list[str] | None, Query(description="event, undecodable, dead_letter or duplicate (repeatable).")
    ] = None,
    topic: str | None = None,
    event_type: str | None = None,
    reason: str | None = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[StoredEvent]:
    """The raw audit log, newest first."""
    filters = Filters(
        connection=connection,
        customers=customer or [],
        reason=reason,
        since=_utc(since),
        until=_utc(until),
    )
    return queries.list_events(db, filters, kind or [], topic, event_type, limit, offset)


def disabled_api() -> Starlette:
    """Answers every request with 503 and how to enable the API (no token was configured)."""

    async def explain(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "the audit API is disabled: set MLC_AUDIT_API_TOKEN "
                "(or MLC_AUDIT_API_INSECURE=true on a trusted network) and restart the audit service"
            },
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", explain, methods=methods)])
