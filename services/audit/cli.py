"""``ml-connector audit …`` and ``ml-connector replay …``: the operator's view of the audit store.

The commands read the audit database directly (``MLC_AUDIT_DB_URL``), not the HTTP API, and print rich
tables, or JSON with ``--json``. The ``replay`` commands live in ``cli_replay``; both Typer apps are
exported here for ``services/cli.py``.
"""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from .cli_common import (
    AudienceOpt,
    ConnectionOpt,
    CustomersOpt,
    Json,
    LimitOpt,
    OffsetOpt,
    SinceOpt,
    UntilOpt,
    console,
    fail,
    make_filters,
    open_engine,
    parse_time,
    print_json,
)
from .cli_replay import replay_app

__all__ = ["audit_app", "parse_time", "replay_app"]

audit_app = typer.Typer(
    help="What happened to each customer, and why (reads the audit store).", no_args_is_help=True
)


@audit_app.command("timeline")
def audit_timeline(customer: str, connection: ConnectionOpt = None, as_json: Json = False) -> None:
    """Everything that happened to CUSTOMER: poll, change, command, result, rejections, dead letters."""
    from . import queries, render

    line = queries.timeline(open_engine(), customer, connection)
    if as_json:
        print_json(line)
    else:
        render.print_timeline(console, line)


@audit_app.command("status")
def audit_status(
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help="in_sync, pending, failed, rejected or excluded (repeatable)."),
    ] = None,
    connection: ConnectionOpt = None,
    audience: AudienceOpt = None,
    customer: CustomersOpt = None,
    reason: Annotated[str | None, typer.Option(help="Failure or rejection reason.")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    as_json: Json = False,
) -> None:
    """Current sync state per customer and audience, most recently changed first."""
    from . import queries, render

    filters = make_filters(
        connection=connection,
        audience=audience,
        customers=customer,
        statuses=status,
        reason=reason,
        since=parse_time(since),
        until=parse_time(until),
    )
    page = queries.customer_states(open_engine(), filters, limit, offset)
    if as_json:
        print_json(page)
        return
    console.print(render.states_table(page.items))
    render.print_page_hint(console, page)


@audit_app.command("failures")
def audit_failures(
    connection: ConnectionOpt = None,
    audience: AudienceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    as_json: Json = False,
) -> None:
    """Failing customers grouped by reason, then dead-lettered and undecodable records."""
    from . import queries, render

    filters = make_filters(
        connection=connection, audience=audience, since=parse_time(since), until=parse_time(until)
    )
    groups = queries.failures(open_engine(), filters)
    if as_json:
        print_json(groups)
    else:
        console.print(render.failures_table(groups))


@audit_app.command("runs")
def audit_runs(
    connection: ConnectionOpt = None,
    status: Annotated[
        list[str] | None, typer.Option("--status", help="completed, failed, poll or replay.")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 20,
    offset: OffsetOpt = 0,
    as_json: Json = False,
) -> None:
    """Poll runs and replays, newest first, with what descended from each."""
    from . import queries, render

    filters = make_filters(
        connection=connection, statuses=status, since=parse_time(since), until=parse_time(until)
    )
    page = queries.list_runs(open_engine(), filters, limit, offset)
    if as_json:
        print_json(page)
        return
    console.print(render.runs_table(page.items))
    render.print_page_hint(console, page)


@audit_app.command("reconcile")
def audit_reconcile(
    connection: ConnectionOpt = None,
    audience: AudienceOpt = None,
    limit: Annotated[int, typer.Option(min=0, max=1000, help="Customers listed per category.")] = 20,
    as_json: Json = False,
) -> None:
    """SYSPRO customers seen vs members last seen in Mailchimp: missing, extra, mismatched email."""
    from . import render
    from .reconcile import reconcile

    reports = reconcile(open_engine(), connection, audience, limit)
    if as_json:
        print_json(reports)
    else:
        render.print_reconciliation(console, reports)


@audit_app.command("events")
def audit_events(
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="event, undecodable, dead_letter or duplicate (repeatable)."),
    ] = None,
    customer: CustomersOpt = None,
    topic: Annotated[str | None, typer.Option(help="Topic (or a dead letter's source topic).")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    as_json: Json = False,
) -> None:
    """The raw audit log, newest first (e.g. `--kind undecodable --kind dead_letter`)."""
    from . import queries, render

    filters = make_filters(customers=customer, since=parse_time(since), until=parse_time(until))
    page = queries.list_events(open_engine(), filters, kind or [], topic, None, limit, offset)
    if as_json:
        print_json(page)
        return
    console.print(render.events_table(page.items))
    render.print_page_hint(console, page)


@audit_app.command("migrate")
def audit_migrate() -> None:
    """Create or upgrade the audit schema in MLC_AUDIT_DB_URL (the service also does this on start)."""
    from shared.settings import AuditSettings, SettingsError, load

    from .database import make_engine, migrate

    try:
        url = load(AuditSettings).db_url
    except SettingsError as exc:
        fail(str(exc))
    engine = make_engine(url)
    revision = migrate(engine)
    console.print(f"audit schema at revision {revision} in {engine.url.render_as_string(hide_password=True)}")


@audit_app.command("new-token")
def audit_new_token() -> None:
    """Print a random API token (set it as MLC_AUDIT_API_TOKEN; keep it in your secret manager)."""
    print(secrets.token_urlsafe(32))
