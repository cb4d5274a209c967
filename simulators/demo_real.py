"""The demo against real systems (``--connections FILE``).

Against a real SYSPRO and Mailchimp the demo does nothing the operator would not: it creates the topics
(``ml-connector topics create``), runs the four services with the operator's environment (credentials
from ``MLC_CREDENTIALS_FILE``/``MLC_MASTER_KEY``, Kafka from ``KAFKA_*``) and shows their counters. It
never writes to SYSPRO, and Mailchimp only sees what the services themselves send.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live

from shared.connections import ConnectionsError, load_connections
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from simulators._server import free_port
from simulators.demo_kafka import OwnSessionProcess, kafka_bootstrap
from simulators.demo_view import MetricsReader, final_table, summary_table, where_to_look
from simulators.stack import SERVICES, ServiceProcess

if TYPE_CHECKING:
    from simulators.demo import DemoOptions

__all__ = ["run_with_connections"]


def _environment(connections: Path, bootstrap: str, workdir: Path) -> tuple[dict[str, str], str]:
    """The services' environment, and how to tell the person the audit API token.

    An operator's token stays a secret (named, never printed); without one the demo makes a throwaway
    token for this run and shows it, as nobody could use the API otherwise.
    """
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "MLC_CONNECTIONS_FILE": str(connections)}
    env.setdefault("MLC_AUDIT_DB_URL", f"sqlite:///{workdir / 'audit.db'}")
    if env.get("MLC_AUDIT_API_TOKEN"):
        return env, "the value of MLC_AUDIT_API_TOKEN"
    env["MLC_AUDIT_API_TOKEN"] = secrets.token_urlsafe(24)
    return env, f"{env['MLC_AUDIT_API_TOKEN']}, made for this run"


async def _start(processes: Mapping[str, ServiceProcess], console: Console) -> bool:
    for proc in processes.values():
        proc.start()
    try:
        with console.status(f"starting {', '.join(processes)}"):
            await asyncio.gather(*(p.wait_ready(timeout=120) for p in processes.values()))
    except RuntimeError as exc:
        console.print(f"[red]a service did not start:[/] {exc}")
        return False
    return True


async def _watch(reader: MetricsReader, once: bool, timeout: float, console: Console) -> bool:
    """Show the counters; with ``once``, until the first poll run's changes all have results."""
    deadline = time.monotonic() + timeout
    finished = False
    with Live(summary_table(await reader.summary()), console=console, refresh_per_second=2) as live:
        while not finished:
            await asyncio.sleep(1.0)
            runs = (await reader.scrape()).get("mlc_poller_runs_total", 0)
            summary = await reader.summary()
            live.update(summary_table(summary), refresh=True)
            finished = once and runs >= 1 and summary.drained
            if once and not finished and time.monotonic() > deadline:
                break
    if not console.is_terminal:
        console.line()
    if once and not finished:
        console.print(f"[red]the first poll run did not complete in {timeout:.0f} s[/]")
    return finished


async def run_with_connections(connections: Path, options: DemoOptions, console: Console) -> int:
    """Run the services against the systems in ``connections`` (an absolute path); the exit code."""
    try:
        load_connections(connections)
    except ConnectionsError as exc:
        console.print(f"[red]{exc}[/]")
        return 2
    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    bootstrap = await asyncio.to_thread(kafka_bootstrap, console)
    env, token = _environment(connections, bootstrap, workdir)
    kafka = KafkaSettings(bootstrap_servers=bootstrap, namespace=env.get("KAFKA_NAMESPACE", ""))
    console.print(
        f"running {', '.join(SERVICES)} against {connections} (Kafka {bootstrap}, namespace "
        f"{kafka.namespace or '(none)'}); nothing is changed in SYSPRO by the demo"
    )
    await ensure_topics(kafka)
    processes = {
        s: OwnSessionProcess(s, env, free_port(), workdir / f"{s}.log", instance=f"demo-{s}")
        for s in SERVICES
    }
    reader = MetricsReader({s: p.url for s, p in processes.items()})
    finished = False
    try:
        if await _start(processes, console):
            audit = processes["audit"].url
            db = env["MLC_AUDIT_DB_URL"]
            console.print(
                where_to_look(
                    [
                        ("audit API", f"{audit}/docs  (token: {token})"),
                        *(
                            ("metrics" if i == 0 else "", f"{n:<7}{p.url}/metrics")
                            for i, (n, p) in enumerate(processes.items())
                        ),
                        ("audit CLI", f"MLC_AUDIT_DB_URL={db} .venv/bin/ml-connector audit failures"),
                        ("logs", str(workdir)),
                    ]
                )
            )
            finished = await _watch(reader, options.once, options.timeout, console)
            console.print(final_table(await reader.summary(), None, []))
    except asyncio.CancelledError:
        finished = not options.once
    finally:
        await reader.aclose()
        codes = {name: await asyncio.to_thread(p.terminate) for name, p in processes.items()}
        with contextlib.suppress(OSError):  # after a hang-up the terminal may be gone
            console.print("services exited: " + ", ".join(f"{n}={c}" for n, c in codes.items()))
    return 0 if finished and all(c == 0 for c in codes.values()) else 1
