"""The ``ml-connector`` command line: run a service, manage topics and credentials, start simulators.

Each command imports what it needs when it runs, so ``ml-connector --help`` is fast and a service
process loads only its own code.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from services.audit.cli import audit_app, replay_app

app = typer.Typer(
    name="ml-connector",
    help="Keep Mailchimp audiences in sync with SYSPRO's customer master.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
topics_app = typer.Typer(
    help="Create or verify the Kafka topics of the event contract.", no_args_is_help=True
)
credentials_app = typer.Typer(help="The encrypted credential store.", no_args_is_help=True)
sim_app = typer.Typer(
    help="Simulators of SYSPRO and Mailchimp (tests, demo, benchmarks).", no_args_is_help=True
)
app.add_typer(topics_app, name="topics")
app.add_typer(credentials_app, name="credentials")
app.add_typer(sim_app, name="sim")
app.add_typer(audit_app, name="audit")
app.add_typer(replay_app, name="replay")

console = Console()
err = Console(stderr=True)


class ServiceName(StrEnum):
    poller = "poller"
    mapper = "mapper"
    loader = "loader"
    audit = "audit"


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


@app.command()
def run(service: Annotated[ServiceName, typer.Argument(help="Which service to run.")]) -> None:
    """Run one service until SIGTERM/SIGINT (exit code 0 after a clean stop)."""
    from shared.connections import ConnectionsError
    from shared.credentials import CredentialError
    from shared.runtime import run_service
    from shared.settings import ServiceSettings, SettingsError, load

    try:
        settings = load(ServiceSettings)
        module = importlib.import_module(f"services.{service.value}.app")
        instance = module.create_service(settings)
    except (SettingsError, ConnectionsError, CredentialError) as exc:
        _fail(str(exc))
    raise typer.Exit(run_service(instance, settings))


@topics_app.command("create")
def topics_create(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Create missing topics and verify existing ones against the registry (idempotent)."""
    from shared.kafka import ensure_topics
    from shared.settings import KafkaSettings, SettingsError, load

    try:
        settings = load(KafkaSettings)
    except SettingsError as exc:
        _fail(str(exc))
    reports = asyncio.run(ensure_topics(settings))
    if as_json:
        print(json.dumps([r.__dict__ for r in reports], indent=2))
    else:
        table = Table("topic", "status", "detail")
        for r in reports:
            colour = {"created": "green", "ok": "cyan", "mismatch": "red"}[r.status]
            table.add_row(r.name, f"[{colour}]{r.status}[/]", r.detail)
        console.print(table)
    if any(r.status == "mismatch" for r in reports):
        raise typer.Exit(1)


@topics_app.command("list")
def topics_list() -> None:
    """Show the topic registry (the contract), without touching Kafka."""
    from shared.topics import ALL_TOPICS

    table = Table("topic", "key", "values", "partitions", "cleanup", "retention")
    for spec in ALL_TOPICS:
        retention = f"{spec.retention_ms // 86_400_000} d" if spec.retention_ms else "-"
        table.add_row(
            spec.name,
            spec.key,
            ", ".join(spec.value_type_names) or "raw bytes",
            str(spec.partitions),
            spec.cleanup_policy,
            retention,
        )
    console.print(table)


def _store() -> Any:
    from shared.credentials import CredentialError, open_store
    from shared.settings import CredentialSettings, SettingsError, load

    try:
        return open_store(load(CredentialSettings))
    except (SettingsError, CredentialError) as exc:
        _fail(str(exc))


@credentials_app.command("generate-key")
def credentials_generate_key() -> None:
    """Print a new random master key (keep it in a secret manager, export as MLC_MASTER_KEY)."""
    from shared.credentials import generate_key

    print(generate_key())


@credentials_app.command("set-syspro")
def credentials_set_syspro(
    name: str,
    operator: Annotated[str, typer.Option(help="SYSPRO operator code.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the OData password from stdin (first line).")
    ] = False,
    enet_password: Annotated[
        bool, typer.Option("--enet-password", help="Also ask for the operator's e.net logon password.")
    ] = False,
    company_password: Annotated[
        bool, typer.Option("--company-password", help="Also ask for the company password (e.net logon).")
    ] = False,
) -> None:
    """Store a SYSPRO operator's OData password (prompted, or read from stdin), and optionally the
    e.net logon and company passwords (prompted, or the next stdin lines)."""
    from shared.credentials import CredentialError

    def ask(label: str) -> str:
        if password_stdin:
            return sys.stdin.readline().rstrip("\n")
        return str(typer.prompt(label, hide_input=True))

    secrets = {"secret": ask("OData password")}
    if enet_password:
        secrets["enet_password"] = ask("e.net logon password")
    if company_password:
        secrets["company_password"] = ask("company password")
    try:
        _store().set(name, "syspro", secrets, {"operator": operator})
    except CredentialError as exc:
        _fail(str(exc))
    console.print(f"stored syspro credential [bold]{name}[/]")


@credentials_app.command("set-mailchimp")
def credentials_set_mailchimp(
    name: str,
    oauth: Annotated[
        bool, typer.Option("--oauth", help="The secret is an OAuth access token, not an API key.")
    ] = False,
    secret_stdin: Annotated[
        bool, typer.Option("--secret-stdin", help="Read the key or token from stdin.")
    ] = False,
) -> None:
    """Store a Mailchimp API key (data center from its suffix) or OAuth token (from the metadata endpoint)."""
    from services.loader.credentials import resolve_mailchimp_credential
    from shared.credentials import CredentialError

    secret = (
        sys.stdin.readline().strip() if secret_stdin else typer.prompt("API key or token", hide_input=True)
    )
    try:
        kind, meta = resolve_mailchimp_credential(secret, oauth=oauth)
        _store().set(name, kind, {"secret": secret}, meta)
    except (CredentialError, ValueError) as exc:
        _fail(str(exc))
    console.print(f"stored {kind} credential [bold]{name}[/] (data center {meta['dc']})")


@credentials_app.command("list")
def credentials_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List credentials without their secrets."""
    rows = _store().list()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "kind", "meta", "updated")
    for row in rows:
        table.add_row(row["name"], row["kind"], json.dumps(row["meta"]), row["updated_at"])
    console.print(table)


@credentials_app.command("delete")
def credentials_delete(name: str) -> None:
    """Remove a credential."""
    from shared.credentials import CredentialError

    try:
        _store().delete(name)
    except CredentialError as exc:
        _fail(str(exc))


@credentials_app.command("rotate")
def credentials_rotate(
    new_key_stdin: Annotated[
        bool, typer.Option("--new-key-stdin", help="Read the new key from stdin.")
    ] = False,
) -> None:
    """Re-encrypt every credential under a new master key (printed unless given on stdin)."""
    from shared.credentials import CredentialError, generate_key

    new_key = sys.stdin.readline().strip() if new_key_stdin else generate_key()
    try:
        _store().rotate(new_key)
    except CredentialError as exc:
        _fail(str(exc))
    err.print("every credential is now encrypted with the new key; set MLC_MASTER_KEY to it")
    if not new_key_stdin:
        print(new_key)


@sim_app.command("syspro")
def sim_syspro(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8081,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    customers: Annotated[int, typer.Option(help="Generate this many customers.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the generated company.")] = 42,
    operator: Annotated[str, typer.Option(help="Operator code accepted.")] = "ADMIN",
    password: Annotated[
        str, typer.Option(help="That operator's OData password.", envvar="MLC_SIM_SYSPRO_PASSWORD")
    ] = "odata",
) -> None:
    """Serve a simulated SYSPRO (OData + e.net) with a generated company."""
    from pydantic import SecretStr

    from simulators._server import serve_forever
    from simulators.syspro import OperatorSecrets, SysproSimConfig, SysproSimulator

    secret = SecretStr(password)
    config = SysproSimConfig(
        operators={operator: OperatorSecrets(odata_password=secret, login_password=secret)}
    )
    sim = SysproSimulator(config)
    sim.generate(customers, seed)
    serve_forever(
        sim.app, host, port, on_started=lambda: err.print(f"SYSPRO simulator on http://{host}:{port}")
    )


@sim_app.command("mailchimp")
def sim_mailchimp(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8082,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    api_key: Annotated[
        str,
        typer.Option(
            help="API key accepted (its -dcN suffix is the data center).", envvar="MLC_SIM_MAILCHIMP_KEY"
        ),
    ] = "0123456789abcdef0123456789abcdef-us6",
    list_id: Annotated[str, typer.Option(help="Create an audience with this id.")] = "a1b2c3d4e5",
    latency_ms: Annotated[float, typer.Option(help="Latency of member PUTs in ms.")] = 0.0,
) -> None:
    """Serve a simulated Mailchimp Marketing API v3.0."""
    from simulators._server import serve_forever
    from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator

    dc = api_key.rsplit("-", 1)[-1]
    config = MailchimpSimConfig(data_centers=[dc], api_keys=[api_key], latency_ms={"member_put": latency_ms})
    sim = MailchimpSimulator(config)
    sim.create_list(list_id=list_id, name="Customers")
    serve_forever(
        sim.app, host, port, on_started=lambda: err.print(f"Mailchimp simulator on http://{host}:{port}")
    )


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Customers in the simulated company.")] = 3000,
    interval: Annotated[float, typer.Option(help="Poll interval in seconds.")] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="Stop at the end instead of running on.")] = False,
    connections: Annotated[
        Path | None,
        typer.Option(help="A real connections file: run the services against it, no simulators."),
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Logs, config and audit db (.run/demo).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated company.")] = 42,
) -> None:
    """The whole pipeline on simulators with a live summary and scripted SYSPRO changes (`make demo`)."""
    from simulators.demo import main as demo_main

    argv = ["--customers", str(customers), "--interval", str(interval), "--seed", str(seed)]
    if once:
        argv.append("--once")
    if connections is not None:
        argv += ["--connections", str(connections)]
    if workdir is not None:
        argv += ["--workdir", str(workdir)]
    raise typer.Exit(demo_main(argv))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
