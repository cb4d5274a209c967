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
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Dialect, Engine, Insert, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import StaticPool

from .schema import UtcDateTime

__all__ = [
    "WRITE",
    "Prepared",
    "SchemaError",
    "current_revision",
    "head_revision",
    "insert_many",
    "insert_statement",
    "make_engine",
    "migrate",
    "upsert",
    "upsert_statement",
]

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


_PLACEHOLDER = re.compile(r"%\((\w+)\)s(::[A-Z][A-Z ]*)?")


class Prepared:
    """An INSERT (or upsert) of ``table`` compiled once for a dialect, executemany'd on batches of rows.

    This is the projection's hot path: compiling the statement for every batch, and SQLAlchemy's
    generic per-row parameter processing, cost more than the database's own work. So rows are tuples
    in ``columns`` order, passed straight to the driver, and only the timestamps are converted here
    (SQLite: the text ``UtcDateTime`` stores; elsewhere: aware UTC datetimes). On PostgreSQL the
    statement is rewritten to positional parameters, which psycopg takes as tuples.
    """

    __slots__ = ("_dates", "_sql", "_to_db", "columns")

    def __init__(self, dialect: Dialect, table: Table, stmt: Insert, columns: Sequence[str]) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
        if compiled.positional:
            order, self._sql = list(compiled.positiontup or ()), compiled.string
        elif dialect.paramstyle == "pyformat":
            order, self._sql = _positional(compiled.string)
        else:
            raise ValueError(f"{dialect.name}: unsupported parameter style {dialect.paramstyle}")
        missing = set(order) - set(columns)
        if missing:
            raise ValueError(f"rows lack {sorted(missing)} for {table.name}")
        self.columns = tuple(order)
        self._dates = tuple(i for i, name in enumerate(order) if isinstance(table.c[name].type, UtcDateTime))
        self._to_db = _sqlite_timestamp if dialect.name == "sqlite" else _utc

    def getter(self) -> Callable[[Any], Any]:
        """Picks a row's values, in ``columns`` order, out of a mapping (``operator.itemgetter``)."""
        return operator.itemgetter(*self.columns)

    def run(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (values in ``columns`` order); the number the database reports written."""
        if not rows:
            return 0
        return connection.exec_driver_sql(self._sql, self._convert(rows)).rowcount

    def run_mappings(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """``run`` for rows as mappings of column name to value."""
        if not rows:
            return 0
        get = self.getter()
        if len(self.columns) == 1:
            return self.run(connection, [(get(row),) for row in rows])
        return self.run(connection, [get(row) for row in rows])

    def _convert(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        dates = self._dates
        if not dates:
            return [tuple(row) for row in rows]
        to_db = self._to_db
        # Many rows share one timestamp object (``recorded_at``): convert it once.
        last: list[Any] = [object()] * len(self.columns)
        text: list[Any] = [None] * len(self.columns)
        converted = []
        for row in rows:
            params = list(row)
            for i in dates:
                value = params[i]
                if value is not last[i]:
                    last[i], text[i] = value, to_db(value)
                params[i] = text[i]
            converted.append(tuple(params))
        return converted


def _positional(sql: str) -> tuple[list[str], str]:
    """``INSERT ... VALUES (%(a)s, %(b)s::VARCHAR) <suffix>`` -> ([a, b],
    ``INSERT ... VALUES (%s, %s::VARCHAR) <suffix>``), keeping the casts the dialect renders."""
    head, sep, rest = sql.partition(" VALUES (")
    order: list[str] = []
    items: list[str] = []
    pos = 0
    while sep:
        match = _PLACEHOLDER.match(rest, pos)
        if match is None:
            break
        order.append(match[1])
        items.append("%s" + (match[2] or ""))
        pos = match.end()
        if rest.startswith(")", pos):
            suffix = rest[pos + 1 :]
            if "%(" not in head + suffix:
                return order, f"{head} VALUES ({', '.join(items)}){suffix}"
            break
        if not rest.startswith(", ", pos):
            break
        pos += 2
    raise ValueError(f"cannot rewrite to positional parameters: {sql}")


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


def insert_statement(
    dialect: Dialect, table: Table, columns: Sequence[str], skip_conflicts_on: str | None = None
) -> Prepared:
    """INSERT of ``columns``; with ``skip_conflicts_on`` a row repeating that unique column is not written."""
    stmt: Insert = table.insert().inline()
    if skip_conflicts_on is not None:
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table).inline().on_conflict_do_nothing(index_elements=[skip_conflicts_on])
    return Prepared(dialect, table, stmt, columns)


def upsert_statement(
    dialect: Dialect,
    table: Table,
    columns: Sequence[str],
    keys: Sequence[str],
    set_: dict[str, Any] | None = None,
) -> Prepared:
    """INSERT ... ON CONFLICT (keys) DO UPDATE: both backends speak it.

    ``set_`` maps columns to expressions, or to callables taking the conflicting row (``excluded``)
    and returning one; by default every non-key column takes the new value.
    """
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).inline()
    if set_ is None:
        set_ = {name: stmt.excluded[name] for name in columns if name not in keys}
    resolved = {name: value(stmt.excluded) if callable(value) else value for name, value in set_.items()}
    return Prepared(
        dialect, table, stmt.on_conflict_do_update(index_elements=list(keys), set_=resolved), columns
    )


def insert_many(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], skip_conflicts_on: str | None = None
) -> int:
    """``insert_statement`` compiled for one call; returns the number of rows written."""
    if not rows:
        return 0
    prepared = insert_statement(connection.dialect, table, list(rows[0]), skip_conflicts_on)
    return prepared.run_mappings(connection, rows)


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    set_: dict[str, Any] | None = None,
) -> None:
    """``upsert_statement`` compiled for one call."""
    if rows:
        upsert_statement(connection.dialect, table, list(rows[0]), keys, set_).run_mappings(connection, rows)
