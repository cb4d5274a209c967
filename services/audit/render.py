"""Rich tables for the audit and replay commands (the ``--json`` output is the models themselves)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .models import (
    AudienceReconciliation,
    CustomerState,
    FailureGroup,
    Page,
    RunSummary,
    StoredEvent,
    Timeline,
)
from .offsets import ResetPlan
from .replay import ReplayReport

__all__ = [
    "events_table",
    "failures_table",
    "print_page_hint",
    "print_reconciliation",
    "print_timeline",
    "replay_table",
    "reset_table",
    "runs_table",
    "states_table",
]

STATUS_STYLE = {
    "in_sync": "green",
    "pending": "yellow",
    "failed": "bold red",
    "rejected": "red",
    "excluded": "dim",
    "dead_letter": "bold red",
    "undecodable": "magenta",
    "duplicate": "dim",
    "completed": "green",
    "none": "dim",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _status(value: str | None) -> Text:
    return Text(value or "-", style=STATUS_STYLE.get(value or "", ""))


def print_timeline(console: Console, line: Timeline) -> None:
    if not line.entries:
        console.print(f"nothing stored about customer [bold]{line.customer}[/]")
        return
    for run in line.runs:
        counts = f"{run.changes} changes, {run.commands} commands, {run.synced} synced, {run.failed} failed"
        console.print(f"[dim]{run.kind or 'run'} {run.run_id} {run.status or ''} ({counts})[/]")
    table = Table("when", "what", "audience", "event", title=f"customer {line.customer}", show_lines=False)
    for entry in line.entries:
        style = (
            "red"
            if entry.kind != "event" or entry.event_type in ("MemberSyncFailed", "CustomerRejected")
            else ""
        )
        summary = Text("  " * entry.depth + ("└ " if entry.depth else "") + entry.summary, style=style)
        table.add_row(_when(entry.occurred_at), summary, entry.audience_id or "", (entry.event_id or "")[:8])
        if entry.response:
            response = ", ".join(
                f"{k}={v}" for k, v in entry.response.items() if k in ("status", "title", "detail")
            )
            table.add_row("", Text("  " * (entry.depth + 1) + f"response: {response}", style="dim"), "", "")
    console.print(table)
    if line.states:
        console.print(states_table(line.states, title="current state"))


def states_table(states: Sequence[CustomerState], title: str = "sync state") -> Table:
    table = Table(
        "connection",
        "customer",
        "audience",
        "status",
        "reason",
        "email",
        "in Mailchimp",
        "updated",
        title=title,
    )
    for s in states:
        member = f"{s.member_email} ({s.mailchimp_status})" if s.member_present else "-"
        reason = s.reason or ""
        if s.detail:
            reason = f"{reason}: {s.detail}" if reason else s.detail
        table.add_row(
            s.connection_id,
            s.customer,
            s.audience_id,
            _status(s.status),
            reason[:80],
            s.email_address or "",
            member,
            _when(s.updated_at),
        )
    return table


def failures_table(groups: Sequence[FailureGroup]) -> Table:
    table = Table("source", "status", "reason", "topic", "count", "examples", "last", title="failures")
    for g in groups:
        table.add_row(
            g.source,
            _status(g.status),
            g.reason or "-",
            g.topic or "",
            str(g.count),
            ", ".join(g.customers),
            _when(g.last_at),
        )
    return table


def runs_table(runs: Sequence[RunSummary]) -> Table:
    table = Table(
        "run",
        "kind",
        "connection",
        "status",
        "started",
        "changes",
        "commands",
        "synced",
        "failed",
        "rejected",
        "dead letters",
        title="runs",
    )
    for r in runs:
        status = r.status if r.status != "failed" else f"failed: {r.reason}"
        table.add_row(
            r.run_id,
            r.kind or "-",
            r.connection_id or "",
            _status(status),
            _when(r.started_at or r.first_event_at),
            str(r.changes),
            str(r.commands),
            str(r.synced),
            str(r.failed),
            str(r.rejected),
            str(r.dead_letters),
        )
    return table


def print_reconciliation(console: Console, reports: Sequence[AudienceReconciliation]) -> None:
    if not reports:
        console.print("no audience has been seen yet")
    for r in reports:
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(r.missing_by_status.items())) or "none"
        console.print(
            f"[bold]{r.connection_id} / {r.audience_id}[/]: {r.customers_seen} customers seen, "
            f"{r.members_synced} members synced; missing {r.missing_count} ({by_status}), "
            f"extra {r.extra_count}, mismatched email {r.mismatched_count}"
        )
        table = Table("category", "customer", "status", "reason", "expected email", "Mailchimp email")
        for category, items in (("missing", r.missing), ("extra", r.extra), ("mismatched", r.mismatched)):
            for item in items:
                table.add_row(
                    category,
                    item.customer,
                    _status(item.status),
                    item.reason or "",
                    item.email_address or "",
                    item.member_email or "",
                )
        if table.row_count:
            console.print(table)


def events_table(events: Sequence[StoredEvent]) -> Table:
    table = Table(
        "when", "kind", "topic", "position", "type", "customer", "reason", "detail", title="audit log"
    )
    for e in events:
        table.add_row(
            _when(e.occurred_at),
            _status(e.kind),
            e.source_topic or e.topic,
            f"{e.partition}:{e.offset}",
            e.event_type or "",
            e.customer or "",
            e.reason or "",
            (e.detail or "")[:80],
        )
    return table


def replay_table(report: ReplayReport) -> Table:
    verb = "would re-emit" if report.dry_run else "re-emitted"
    table = Table(
        "connection",
        "customer",
        "audience",
        "reason",
        "failed",
        "command",
        "email",
        title=f"replay {report.replay_id}: {verb} {len(report.candidates)} command(s)",
    )
    for c in report.candidates:
        table.add_row(
            c.state.connection_id,
            c.state.customer,
            c.state.audience_id,
            c.state.reason or "",
            _when(c.state.updated_at),
            str(c.command.event_id)[:8],
            c.command.email_address,
        )
    return table


def reset_table(plan: ResetPlan) -> Table:
    verb = "would move" if plan.dry_run else "moved"
    table = Table(
        "topic",
        "partition",
        "current",
        "target",
        "log start",
        "log end",
        title=f"{plan.group}: {verb} to {plan.target}",
    )
    for p in plan.partitions:
        table.add_row(
            p.topic,
            str(p.partition),
            "-" if p.current is None else str(p.current),
            str(p.target),
            str(p.log_start),
            str(p.log_end),
        )
    return table


def print_page_hint(console: Console, page: Page[Any]) -> None:
    if page.next_offset is not None:
        console.print(f"[dim]more: --offset {page.next_offset}[/]")
