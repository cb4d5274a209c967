"""What the demo shows: the pipeline's counters (read from each service's ``/metrics``), progress bars of
the initial sync, and the closing tables.

Every number on screen comes from the services' own Prometheus endpoints, the same ones an operator's
dashboard scrapes, so the demo also shows that those counters tell the truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from simulators.demo_script import ChangeResult
from simulators.expectations import Report
from simulators.stack import AUDIT_TOKEN

if TYPE_CHECKING:
    from simulators.stack import LocalStack

__all__ = [
    "MetricsReader",
    "Summary",
    "SyncProgress",
    "audit_step",
    "changes_table",
    "final_table",
    "stack_pointers",
    "summary_table",
    "where_to_look",
]

#: Summary field -> the counter it sums (over all labels).
_COUNTERS = {
    "read": "mlc_poller_rows_read_total",
    "changed": "mlc_poller_events_emitted_total",
    "mapped": "mlc_mapper_changes_total",
    "commands": "mlc_mapper_commands_total",
    "rejected": "mlc_mapper_rejections_total",
    "synced": "mlc_loader_synced_total",
    "failed": "mlc_loader_failed_total",
    "audited": "mlc_audit_rows_stored_total",
}
_LABELS = {
    "read": "rows read (all polls)",
    "changed": "changes detected",
    "mapped": "changes mapped",
    "commands": "member commands",
    "rejected": "rejections",
    "synced": "synced to Mailchimp",
    "failed": "failed in Mailchimp",
    "audited": "audit rows stored",
}


@dataclass(frozen=True)
class Summary:
    read: int = 0
    changed: int = 0
    mapped: int = 0
    commands: int = 0
    rejected: int = 0
    synced: int = 0
    failed: int = 0
    audited: int = 0

    @property
    def drained(self) -> bool:
        """Every detected change was mapped and every command got a result."""
        return self.mapped >= self.changed and self.synced + self.failed >= self.commands

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> sample name -> value summed over labels (``_created`` samples skipped)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name.endswith("_created"):
            continue
        with contextlib.suppress(ValueError):
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


class MetricsReader:
    """Scrapes the services' ``/metrics``; a service that does not answer keeps its last values."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self.urls = dict(urls)
        self._last: dict[str, dict[str, float]] = {}
        self._client = httpx.AsyncClient(timeout=3.0)

    async def scrape(self) -> dict[str, float]:
        merged: dict[str, float] = {}
        for service, url in self.urls.items():
            with contextlib.suppress(httpx.HTTPError):
                response = await self._client.get(f"{url}/metrics")
                if response.status_code == 200:
                    self._last[service] = parse_metrics(response.text)
            for name, value in self._last.get(service, {}).items():
                merged[name] = merged.get(name, 0.0) + value
        return merged

    async def summary(self) -> Summary:
        values = await self.scrape()
        return Summary(**{f: int(values.get(name, 0)) for f, name in _COUNTERS.items()})

    async def aclose(self) -> None:
        await self._client.aclose()


def summary_table(
    summary: Summary, members: int | None = None, title: str = "live summary (the services' /metrics)"
) -> Table:
    """The counters as ``label value`` pairs, five to a row: fits an 80-column terminal."""
    items = [(name, str(getattr(summary, name))) for name in (f.name for f in fields(Summary))]
    if summary.failed:
        items = [(n, f"[red]{v}[/]" if n == "failed" else v) for n, v in items]
    if members is not None:
        items.append(("members", str(members)))
    table = Table.grid(padding=(0, 1))
    table.title = title
    table.title_justify = "left"
    for _ in range(5):
        table.add_column(style="dim", justify="right")
        table.add_column(justify="left", min_width=6)
    for start in range(0, len(items), 5):
        cells: list[str] = []
        for name, value in items[start : start + 5]:
            cells += [name, f"[bold]{value}[/]"]
        table.add_row(*cells)
    return table


class SyncProgress:
    """Progress bars of the initial sync: detected, mapped, applied in Mailchimp."""

    def __init__(self, customers: int) -> None:
        self.customers = customers
        self.progress = Progress(
            TextColumn("{task.description:<26}"),
            BarColumn(bar_width=36),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            auto_refresh=False,
        )
        self.detected: TaskID = self.progress.add_task("SYSPRO changes detected", total=customers)
        self.mapped: TaskID = self.progress.add_task("mapped by policy", total=customers)
        self.applied: TaskID = self.progress.add_task("applied in Mailchimp", total=None)

    def update(self, summary: Summary) -> None:
        p = self.progress
        p.update(self.detected, completed=min(summary.changed, self.customers))
        p.update(self.mapped, completed=min(summary.mapped, self.customers))
        p.update(self.applied, completed=summary.synced + summary.failed, total=max(summary.commands, 1))

    def view(self, summary: Summary, members: int | None) -> RenderableType:
        return Group(self.progress, summary_table(summary, members))


def changes_table(results: list[ChangeResult]) -> Table:
    table = Table(title="scripted SYSPRO changes", title_justify="left", show_edge=False)
    table.add_column("change")
    table.add_column("customer")
    table.add_column("visible in Mailchimp after", justify="right")
    for r in results:
        delay = (
            f"[green]{r.delay:.1f} s[/]" if r.delay is not None else f"[red]not seen[/] ({r.last_problem})"
        )
        table.add_row(r.change.title, r.change.customer, delay)
    return table


def final_table(summary: Summary, report: Report | None, results: list[ChangeResult]) -> Table:
    table = Table(title="demo result", title_justify="left", show_edge=False, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for f in fields(Summary):
        table.add_row(_LABELS[f.name], str(getattr(summary, f.name)))
    if report is not None:
        verdict = "[green]matches[/]" if report.ok else f"[red]{len(report.problems)} differences[/]"
        table.add_row("audience vs SYSPRO under the policy", verdict)
        for key, value in report.counts().items():
            table.add_row(f"  {key.replace('_', ' ')}", str(value))
    if results:
        seen = [r.delay for r in results if r.delay is not None]
        table.add_row("scripted changes visible", f"{len(seen)}/{len(results)}")
        if seen:
            table.add_row("  slowest change delay", f"{max(seen):.1f} s")
    return table


def where_to_look(lines: list[tuple[str, str]]) -> Panel:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for what, value in lines:
        table.add_row(what, value)
    return Panel(table, title="where to look", title_align="left")


def audit_step(entry: Mapping[str, Any]) -> str:
    """One audit timeline entry as a few words ("" for entries that are not a rejection or a result)."""
    payload = entry.get("payload") or {}
    kind = entry.get("event_type")
    if kind == "CustomerRejected":
        return (
            f"rejected: {entry.get('reason')} (field {payload.get('field')}, value {payload.get('value')!r})"
        )
    if kind == "MemberSynced":
        return f"synced: {entry.get('outcome') or payload.get('outcome')}"
    if kind == "MemberSyncFailed":
        return f"failed: {entry.get('reason')}"
    return ""


def stack_pointers(stack: LocalStack, workdir: Path) -> list[tuple[str, str]]:
    """Where a person can look into a running ``LocalStack``: APIs, metrics, CLI commands, simulators."""
    env = f"MLC_AUDIT_DB_URL={stack.env['MLC_AUDIT_DB_URL']}"
    audit = stack.processes["audit"].url
    token = AUDIT_TOKEN
    change = """-d '{"Email": "new@example.org"}'"""
    return [
        ("audit API", f"{audit}/docs  (token: {token})"),
        ("try", f"curl -H 'Authorization: Bearer {token}' {audit}/failures"),
        ("", f"curl -H 'Authorization: Bearer {token}' {audit}/reconcile"),
        *(
            (("metrics" if i == 0 else ""), f"{name:<7}{proc.url}/metrics")
            for i, (name, proc) in enumerate(stack.processes.items())
        ),
        ("audit CLI", f"{env} .venv/bin/ml-connector audit failures"),
        ("", f"{env} .venv/bin/ml-connector audit timeline <customer>"),
        ("", f"{env} .venv/bin/ml-connector audit runs"),
        ("", f"{env} .venv/bin/ml-connector audit reconcile"),
        ("SYSPRO sim", f"{stack.odata_url}"),
        (
            "",
            f"change a customer: curl -X PATCH {stack.syspro_server.url}/_admin/customers/000042 "
            f"-H 'content-type: application/json' {change}",
        ),
        ("Mailchimp sim", f"{stack.mailchimp_server.url}/_admin/lists/{stack.options.list_id}/members"),
        ("logs", str(workdir)),
    ]
