"""``ml-connector replay …``: re-emit failed commands, or reset a service's consumer group (ADR 42)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from aiokafka.errors import KafkaError
from rich.progress import Progress

from .cli_common import (
    AudienceOpt,
    ConnectionOpt,
    CustomersOpt,
    Json,
    SinceOpt,
    UntilOpt,
    console,
    err,
    fail,
    open_engine,
    parse_time,
)

__all__ = ["replay_app"]

replay_app = typer.Typer(
    help="Re-emit failed commands (`replay --failed`, `replay failed`) or reset a service's consumer group.",
    invoke_without_command=True,
)


def _replay_failed(
    reason: str | None,
    customers: list[str] | None,
    connection: str | None,
    audience: str | None,
    since: str | None,
    until: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    from shared.settings import KafkaSettings, SettingsError, load

    from . import render
    from .replay import replay_failed

    try:
        kafka = load(KafkaSettings)
    except SettingsError as exc:
        fail(str(exc))
    engine = open_engine()
    with Progress(console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("re-emitting commands", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = asyncio.run(
                replay_failed(
                    engine,
                    kafka,
                    reason=reason,
                    customers=customers or [],
                    connection=connection,
                    audience=audience,
                    since=parse_time(since),
                    until=parse_time(until),
                    dry_run=dry_run,
                    progress=advance,
                )
            )
        except KafkaError as exc:
            fail(f"Kafka: {type(exc).__name__}: {exc}", code=1)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    console.print(render.replay_table(report))
    for state, why in report.skipped:
        err.print(f"[yellow]skipped[/] {state.connection_id}/{state.customer}/{state.audience_id}: {why}")
    if dry_run:
        console.print("[dim]dry run: nothing was produced[/]")


ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Only this failure reason.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Say what would be re-emitted; produce nothing.")]


@replay_app.callback()
def replay_main(
    ctx: typer.Context,
    failed: Annotated[
        bool, typer.Option("--failed", help="Re-emit the last command of failed customers.")
    ] = False,
    reason: ReasonOpt = None,
    customer: CustomersOpt = None,
    connection: ConnectionOpt = None,
    audience: AudienceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dry_run: DryRunOpt = False,
    as_json: Json = False,
) -> None:
    """`ml-connector replay --failed [...]` is `ml-connector replay failed [...]`."""
    if ctx.invoked_subcommand is not None:
        return
    if not failed:
        console.print(ctx.get_help())
        raise typer.Exit(2)
    _replay_failed(reason, customer, connection, audience, since, until, dry_run, as_json)


@replay_app.command("failed")
def replay_failed_command(
    reason: ReasonOpt = None,
    customer: CustomersOpt = None,
    connection: ConnectionOpt = None,
    audience: AudienceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dry_run: DryRunOpt = False,
    as_json: Json = False,
) -> None:
    """Re-emit the last command of failed customers (by reason, customer, failure time) to the loader."""
    _replay_failed(reason, customer, connection, audience, since, until, dry_run, as_json)


@replay_app.command("reset-offsets")
def replay_reset_offsets(
    service: Annotated[str, typer.Argument(help="poller, mapper, loader or audit (group <ns>mlc-SERVICE).")],
    to_datetime: Annotated[
        str | None, typer.Option("--to-datetime", help="ISO 8601 time (or 2h / 7d ago).")
    ] = None,
    to_earliest: Annotated[bool, typer.Option("--to-earliest", help="The oldest retained records.")] = False,
    to_latest: Annotated[bool, typer.Option("--to-latest", help="Skip everything not yet consumed.")] = False,
    to_offset: Annotated[
        int | None, typer.Option("--to-offset", min=0, help="This offset on every partition.")
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="Only these topics (registry names).")
    ] = None,
    dry_run: DryRunOpt = False,
    wait: Annotated[
        float | None,
        typer.Option("--wait", min=0, help="Wait up to SECONDS for the group's members to stop."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Move SERVICE's consumer group, like `kafka-consumer-groups --reset-offsets` (needs an empty group)."""
    from shared.settings import KafkaSettings, SettingsError, load

    from . import render
    from .offsets import GroupActiveError, reset_offsets

    if sum([to_datetime is not None, to_earliest, to_latest, to_offset is not None]) != 1:
        fail("choose exactly one of --to-datetime, --to-earliest, --to-latest, --to-offset")
    try:
        kafka = load(KafkaSettings)
    except SettingsError as exc:
        fail(str(exc))
    try:
        plan = asyncio.run(
            reset_offsets(
                kafka,
                service,
                to_datetime=parse_time(to_datetime),
                to_earliest=to_earliest,
                to_latest=to_latest,
                to_offset=to_offset,
                topics=topic or None,
                dry_run=dry_run,
                wait=wait,
            )
        )
    except KafkaError as exc:
        fail(f"Kafka: {type(exc).__name__}: {exc}", code=1)
    except GroupActiveError as exc:
        fail(str(exc), code=1)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(plan.as_dict(), indent=2))
        return
    console.print(render.reset_table(plan))
    if plan.members:
        err.print(
            f"[yellow]the group has live members ({', '.join(plan.members)}): stop them before resetting[/]"
        )
    if service == "audit":
        err.print(
            "[yellow]note: the audit resumes from its own store; its group offsets only feed lag metrics[/]"
        )
    if dry_run:
        console.print("[dim]dry run: nothing was committed[/]")
