"""Audit store fixtures: the same store contract on SQLite (always) and PostgreSQL (when configured).

PostgreSQL tests need ``MLC_TEST_POSTGRES_URL`` (``scripts/postgres/pg-local.sh start`` prints it);
each test gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from services.audit.store import AuditStore

POSTGRES_URL = os.environ.get("MLC_TEST_POSTGRES_URL", "")
NO_POSTGRES = (
    'MLC_TEST_POSTGRES_URL is not set: run `eval "$(scripts/postgres/pg-local.sh start)"` '
    "and export it to run the store contract against PostgreSQL"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    schema = f"audit_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[AuditStore]:
    audit = AuditStore.open(db_url)
    try:
        yield audit
    finally:
        audit.close()
