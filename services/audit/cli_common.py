"""What the audit and replay commands share: consoles, options, time parsing, opening the store.

Times are ISO 8601 (UTC unless an offset is given) or a duration back from now: ``90s``, ``15m``,
``2h``, ``7d``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from .models import Filters

__all__ = [
    "AudienceOpt",
    "ConnectionOpt",
    "CustomersOpt",
    "Json",
    "LimitOpt",
    "OffsetOpt",
    "SinceOpt",
    "UntilOpt",
    "console",
    "err",
    "fail",
    "make_filters",
    "open_engine",
    "parse_time",
    "print_json",
]

console = Console()
err = Console(stderr=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ConnectionOpt = Annotated[str | None, typer.Option("--connection", "-c", help="Connection id.")]
AudienceOpt = Annotated[str | None, typer.Option("--audience", "-a", help="Audience id.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="From this time (ISO 8601, or 2h / 7d ago).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Before this time (ISO 8601, or 2h / 7d ago).")]
CustomersOpt = Annotated[list[str] | None, typer.Option("--customer", help="Customer code (repeatable).")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows per page.")]
OffsetOpt = Annotated[int, typer.Option("--offset", min=0, help="Rows to skip.")]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (naive = UTC) or a duration back from now (``15m``, ``2h``, ``7d``)."""
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"not a time: {value!r} (use ISO 8601 like 2030-05-01T08:00:00Z, or 15m / 2h / 7d)")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def open_engine() -> Engine:
    from sqlalchemy.exc import OperationalError

    from shared.settings import AuditSettings, SettingsError, load

    from .database import SchemaError
    from .store import AuditStore

    try:
        return AuditStore.open(load(AuditSettings).db_url, create=False).engine
    except (SettingsError, SchemaError) as exc:
        fail(str(exc))
    except OperationalError as exc:
        fail(f"cannot reach the audit database: {exc.orig}")


def print_json(value: Any) -> None:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json") if hasattr(v, "model_dump") else v for v in value]
    print(json.dumps(value, indent=2, default=str))


def make_filters(**values: Any) -> Filters:
    from .models import Filters

    return Filters(**{k: v for k, v in values.items() if v is not None})
