"""``make demo``: the whole pipeline on one machine, watched live.

By default it starts a SYSPRO simulator seeded with a distributor (15 branches, dirty data included), a
Mailchimp simulator and the four services as real ``ml-connector run`` processes (``LocalStack``), on the
local Kafka broker (started if ``KAFKA_BOOTSTRAP_SERVERS`` is unset) under a namespace of its own. It
shows the initial sync, then makes six scripted changes in SYSPRO one at a time and measures how long
each takes to show in Mailchimp, checks the audience against SYSPRO under the policy, tells where to
look, and keeps running until Ctrl-C (or stops at the end with ``--once``).

With ``--connections FILE`` it runs the same four services against the systems that file names (real
SYSPRO and Mailchimp; credentials from the ``MLC_*`` environment) and only shows the live counters: it
changes nothing in those systems.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.live import Live

from shared.settings import KafkaSettings
from simulators.demo_kafka import delete_namespace, kafka_bootstrap, start_local_stack
from simulators.demo_real import run_with_connections
from simulators.demo_script import ChangeResult, apply_and_wait, plan_changes
from simulators.demo_view import (
    MetricsReader,
    Summary,
    SyncProgress,
    audit_step,
    changes_table,
    final_table,
    stack_pointers,
    summary_table,
    where_to_look,
)
from simulators.expectations import Report, compare, stack_audience
from simulators.stack import REPO, SERVICES, LocalStack, StackOptions

__all__ = ["DemoOptions", "main", "run"]


@dataclass
class DemoOptions:
    customers: int = 3000
    interval: float = 5.0
    once: bool = False
    connections: Path | None = None
    workdir: Path = field(default_factory=lambda: REPO / ".run" / "demo")
    seed: int = 42
    #: Longest wait for the initial sync and for each scripted change.
    timeout: float = 300.0


@dataclass
class _Outcome:
    code: int = 1
    interrupted: bool = False


class SimulatedDemo:
    """The default demo: simulators, the four services, the initial sync and the scripted changes."""

    def __init__(self, options: DemoOptions, console: Console, kafka: KafkaSettings) -> None:
        self.options = options
        self.console = console
        self.kafka = kafka
        if options.workdir.exists():
            shutil.rmtree(options.workdir)  # an old audit database would hold another namespace's rows
        self.stack = LocalStack(
            options.workdir,
            kafka,
            StackOptions(customers=options.customers, seed=options.seed, poll_interval=options.interval),
        )
        self.reader: MetricsReader | None = None
        self.results: list[ChangeResult] = []
        self.report: Report | None = None
        self.departed: dict[str, dict[str, object]] = {}

    async def start(self) -> None:
        o = self.options
        with self.console.status(
            f"starting the SYSPRO simulator ({o.customers} customers), the Mailchimp simulator and "
            f"{', '.join(SERVICES)} (namespace {self.kafka.namespace})"
        ):
            started = time.monotonic()
            await start_local_stack(self.stack, own_session=True)
        self.console.print(f"[green]✓[/] services ready in {time.monotonic() - started:.1f} s")
        self.reader = MetricsReader({s: p.url for s, p in self.stack.processes.items()})

    async def summary(self) -> Summary:
        assert self.reader is not None
        return await self.reader.summary()

    async def initial_sync(self) -> Summary:
        progress = SyncProgress(self.options.customers)
        deadline = time.monotonic() + self.options.timeout
        summary = await self.summary()
        started = time.monotonic()
        try:
            with Live(progress.view(summary, 0), console=self.console, refresh_per_second=4) as live:
                while True:
                    summary = await self.summary()
                    progress.update(summary)
                    live.update(progress.view(summary, len(self.stack.members())), refresh=True)
                    if summary.changed >= self.options.customers and summary.drained:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the initial sync did not finish in {self.options.timeout:.0f} s")
                    self._check_alive()
                    await asyncio.sleep(0.25)
        finally:
            with contextlib.suppress(OSError):
                self._end_live()
        self.console.print(
            f"[green]✓[/] initial sync: {summary.synced} members synced, {summary.rejected} customers "
            f"rejected, {summary.failed} failed, in {time.monotonic() - started:.1f} s"
        )
        return summary

    def _end_live(self) -> None:
        """Off a terminal, Live leaves its last frame without a line break."""
        if not self.console.is_terminal:
            self.console.line()

    def _check_alive(self) -> None:
        for name, proc in self.stack.processes.items():
            if not proc.alive:
                raise RuntimeError(f"{name} exited unexpectedly:\n{proc.logs()[-3000:]}")

    async def scripted_changes(self) -> None:
        audience = stack_audience(self.stack)
        changes = plan_changes(self.stack, audience, seed=self.options.seed)
        timeout = max(60.0, 6 * self.options.interval + 30)
        self.console.rule("scripted changes in SYSPRO, one at a time")
        self.console.print(
            f"[dim]each delay runs from the SYSPRO write to the member looking right in Mailchimp; it "
            f"includes the wait for the next poll (every {self.options.interval:g} s)[/]"
        )
        for change in changes:
            self.console.print(f"[bold]{change.title}[/]: {change.description}")
            if change.before:
                self.console.print(f"  audit before: {await self._audit_line(change.customer, 'rejected')}")
            if change.departed_row is not None:
                self.departed[change.customer] = change.departed_row
            result = await apply_and_wait(change, timeout)
            self.results.append(result)
            if result.delay is not None:
                self.console.print(f"  [green]✓[/] visible in Mailchimp after [bold]{result.delay:.1f} s[/]")
            else:
                self.console.print(f"  [red]✗ not visible after {timeout:.0f} s[/]: {result.last_problem}")
            if change.before:
                self.console.print(f"  audit after:  {await self._audit_line(change.customer, 'synced')}")
            self._check_alive()

    async def _audit_line(self, customer: str, until: str) -> str:
        """The audit's timeline of ``customer`` (rejections and results, oldest first) on one line, once
        it shows a step starting with ``until`` (the audit trails the pipeline by a moment)."""
        deadline = time.monotonic() + 20
        async with self.stack.audit_client() as client:
            while True:
                doc = (await client.get(f"/customers/{customer}/timeline")).json()
                steps = [audit_step(e) for e in doc.get("entries", [])]
                steps = [s for s in steps if s]
                if any(s.startswith(until) for s in steps) or time.monotonic() > deadline:
                    return " -> ".join(steps) or "(nothing recorded yet)"
                await asyncio.sleep(0.25)

    async def check(self) -> Report:
        """Compare the audience with SYSPRO, allowing the last commands a few seconds to land."""
        deadline = time.monotonic() + 30
        while True:
            report = compare(self.stack, departed=self.departed)
            if report.ok or time.monotonic() > deadline:
                self.report = report
                return report
            await asyncio.sleep(0.5)

    async def explore(self) -> None:
        """Keep the live summary up until Ctrl-C, for a person to poke at the pipeline."""
        self.console.print("[bold]running until Ctrl-C[/] (change SYSPRO through its /_admin API and watch)")
        try:
            with Live(
                summary_table(await self.summary()), console=self.console, refresh_per_second=2
            ) as live:
                while True:
                    await asyncio.sleep(1.0)
                    live.update(summary_table(await self.summary(), len(self.stack.members())), refresh=True)
                    self._check_alive()
        finally:
            with contextlib.suppress(OSError):
                self._end_live()

    async def stop(self) -> bool:
        """Stop the services (SIGTERM, once each) and the simulators, then drop the run's topics.

        Stopping comes first and output second: after a hang-up the terminal may be gone."""
        if self.reader is not None:
            await self.reader.aclose()
        codes = await asyncio.to_thread(self.stack.stop)
        clean = all(code == 0 for code in codes.values())
        colour = "green" if clean else "red"
        with contextlib.suppress(OSError):
            self.console.print(
                f"[{colour}]services exited:[/] " + ", ".join(f"{n}={c}" for n, c in codes.items())
            )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(delete_namespace(self.kafka), 60)
        return clean


async def _run_simulated(options: DemoOptions, console: Console, outcome: _Outcome) -> None:
    bootstrap = await asyncio.to_thread(kafka_bootstrap, console)
    kafka = KafkaSettings(bootstrap_servers=bootstrap, namespace=f"demo-{uuid.uuid4().hex[:8]}.")
    console.print(f"Kafka {bootstrap}, namespace [bold]{kafka.namespace}[/], workdir {options.workdir}")
    demo = SimulatedDemo(options, console, kafka)
    completed = passed = False
    try:
        await demo.start()
        await demo.initial_sync()
        await demo.scripted_changes()
        report = await demo.check()
        console.print(report.render(), soft_wrap=not console.is_terminal, markup=False, highlight=False)
        console.print(where_to_look(stack_pointers(demo.stack, options.workdir)))
        console.print(changes_table(demo.results))
        console.print(final_table(await demo.summary(), report, demo.results))
        passed = report.ok and all(r.arrived for r in demo.results)
        completed = True
        if not options.once:
            await demo.explore()
    except asyncio.CancelledError:
        outcome.interrupted = True
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]demo failed:[/] {exc}")
    finally:
        clean = await asyncio.shield(demo.stop())
        # Ctrl-C is the normal end of an interactive demo; a finished one must also have passed.
        outcome.code = 0 if clean and (passed if completed else outcome.interrupted) else 1


async def run(options: DemoOptions, console: Console | None = None, outcome: _Outcome | None = None) -> int:
    """Run the demo; the exit code (0: every check passed and every service stopped cleanly)."""
    console = console or Console()
    outcome = outcome or _Outcome()
    task = asyncio.current_task()
    if task is not None:
        # The services run in sessions of their own: a SIGTERM, or the terminal going away, ends the
        # demo as Ctrl-C does, so that it stops them.
        for sig in (signal.SIGTERM, signal.SIGHUP):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    if options.connections is not None:
        outcome.code = await run_with_connections(options.connections, options, console)
    else:
        await _run_simulated(options, console, outcome)
    return outcome.code


def parse_args(argv: list[str] | None = None) -> DemoOptions:
    parser = argparse.ArgumentParser(prog="python -m simulators.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=3000, help="customers in the simulated company")
    parser.add_argument("--interval", type=float, default=5.0, help="poll interval in seconds")
    parser.add_argument("--once", action="store_true", help="stop at the end instead of running on")
    parser.add_argument("--connections", type=Path, help="a real connections file: no simulators")
    parser.add_argument("--workdir", type=Path, default=REPO / ".run" / "demo", help="logs, config, audit db")
    parser.add_argument("--seed", type=int, default=42, help="seed of the simulated company")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for the initial sync")
    ns = parser.parse_args(argv)
    return DemoOptions(
        ns.customers,
        ns.interval,
        ns.once,
        ns.connections and ns.connections.resolve(),
        ns.workdir,
        ns.seed,
        ns.timeout,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    outcome = _Outcome()
    try:
        return asyncio.run(run(options, outcome=outcome))
    except KeyboardInterrupt:
        return outcome.code


if __name__ == "__main__":
    sys.exit(main())
