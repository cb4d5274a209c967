"""Alembic environment: runs on the connection ``services.audit.store.migrate`` hands over.

There is no alembic.ini: the store builds the configuration in code, so the service, the command line
and the tests migrate the same way.
"""

from __future__ import annotations

from alembic import context

from services.audit.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables for future migrations.
    render_as_batch=True,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
