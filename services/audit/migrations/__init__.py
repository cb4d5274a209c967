"""Alembic migrations of the audit store (run by ``services.audit.store.migrate``)."""
