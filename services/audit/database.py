"""Engines for the audit store, its migrations, and the one dialect difference the write path has.

SQLite (the default, a file) is tuned for one writer and many readers: WAL journal, ``synchronous=
NORMAL`` (a batch survives a process crash; a power loss may lose the last batches, which are then
read again from Kafka because their positions are lost with them), and ``BEGIN IMMEDIATE`` for write
transactions so two writers queue instead of failing on a lock upgrade. PostgreSQL needs nothing
special: ``postgresql+psycopg://user@host/db``.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Insert, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import StaticPool

from .schema import UtcDateTime

__all__ = ["WRITE", "SchemaError", "current_revision", "head_revision", "make_engine", "migrate", "upsert"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
WRITE = {"audit_write": True}
"""Execution options of a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""

# Serialises concurrent migrations on PostgreSQL (the service and a command line starting together).
_MIGRATION_LOCK = 0x6D6C6361


class SchemaError(RuntimeError):
    """The database has no audit schema, or one this code does not know."""


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``, with SQLite tuned for the projection's write pattern."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **options)
    in_memory = parsed.database in (None, "", ":memory:")
    if in_memory:
        options.setdefault("poolclass", StaticPool)
    options.setdefault("connect_args", {}).update({"check_same_thread": False, "timeout": 60})
    engine = create_engine(url, **options)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event (below) issue BEGIN, so writers can ask for IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("audit_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise SchemaError("the audit migrations have no head revision")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine) -> str:
    """Bring the schema to the latest revision (idempotent); returns the revision."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        before = MigrationContext.configure(connection).get_current_revision()
        command.upgrade(_config(connection), "head")
        after = MigrationContext.configure(connection).get_current_revision()
    if before != after:
        log.info("audit schema migrated", extra={"from_revision": before, "to_revision": after})
    return after or ""


def check_schema(engine: Engine) -> None:
    """Fail clearly when the database was never migrated or is newer than this code."""
    current = current_revision(engine)
    head = head_revision()
    if current is None:
        raise SchemaError(
            f"no audit schema in {engine.url.render_as_string(hide_password=True)}: start the audit service "
            "or run `ml-connector audit migrate` (is MLC_AUDIT_DB_URL right?)"
        )
    if current != head:
        raise SchemaError(
            f"audit schema is at revision {current}, this version expects {head}: "
            "run `ml-connector audit migrate`"
        )


def execute_many(connection: Connection, table: Table, stmt: Insert, rows: Sequence[dict[str, Any]]) -> int:
    """executemany an INSERT (or upsert) of ``table`` rows, converting values once, in bulk.

    This is the projection's hot path: SQLAlchemy's generic per-row parameter processing cost more than
    SQLite's own work. The statement is still compiled by SQLAlchemy for the connection's dialect;
    only the values are passed straight to the driver. Every row must have the same keys, naming
    every column the statement needs. Returns the number of rows the database reports written.
    """
    if not rows:
        return 0
    dialect = connection.dialect
    names = list(rows[0])
    compiled = stmt.compile(dialect=dialect, column_keys=names)
    dates = {name for name in names if isinstance(table.c[name].type, UtcDateTime)}
    to_db = _sqlite_timestamp if dialect.name == "sqlite" else _utc
    converted: list[Any]
    if compiled.positional:
        order = list(compiled.positiontup or ())
        missing = set(order) - set(names)
        if missing:
            raise ValueError(f"rows lack {sorted(missing)} for {table.name}")
        values = operator.itemgetter(*order)
        positions = [i for i, name in enumerate(order) if name in dates]
        # Many rows share one timestamp object (``recorded_at``): convert it once.
        last: list[Any] = [object()] * len(order)
        text: list[Any] = [None] * len(order)
        converted = []
        for row in rows:
            params = list(values(row)) if len(order) > 1 else [values(row)]
            for i in positions:
                value = params[i]
                if value is not last[i]:
                    last[i], text[i] = value, to_db(value)
                params[i] = text[i]
            converted.append(tuple(params))
    else:
        converted = [{**row, **{n: to_db(row[n]) for n in dates}} for row in rows]
    return connection.exec_driver_sql(str(compiled), converted).rowcount


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.astimezone(UTC)


def _sqlite_timestamp(value: datetime | None) -> str | None:
    """The text ``UtcDateTime`` stores on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC)."""
    value = _utc(value)
    return None if value is None else value.isoformat(" ", "microseconds")[:26]


def insert_many(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], skip_conflicts_on: str | None = None
) -> int:
    """executemany'd INSERT; with ``skip_conflicts_on`` a row repeating that unique column is not written.

    Returns the number of rows written.
    """
    stmt = table.insert().inline()
    if skip_conflicts_on is not None:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table).inline().on_conflict_do_nothing(index_elements=[skip_conflicts_on])
    return execute_many(connection, table, stmt, rows)


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    set_: dict[str, Any] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, executemany'd: both backends speak it.

    ``set_`` maps columns to expressions, or to callables taking the conflicting row (``excluded``)
    and returning one; by default every non-key column takes the new value.
    """
    if not rows:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).inline()
    if set_ is None:
        set_ = {name: stmt.excluded[name] for name in rows[0] if name not in keys}
    resolved = {name: value(stmt.excluded) if callable(value) else value for name, value in set_.items()}
    execute_many(
        connection, table, stmt.on_conflict_do_update(index_elements=list(keys), set_=resolved), rows
    )
