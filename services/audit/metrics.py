"""The audit service's own metrics (the shared ones are in ``shared.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "API_UNAUTHORIZED",
    "RECORDS_ALREADY_STORED",
    "ROWS_STORED",
    "STORE_RETRIES",
    "STORE_WRITE_SECONDS",
    "SYNC_STATE_CUSTOMERS",
]

ROWS_STORED = Counter(
    "mlc_audit_rows_stored_total",
    "Rows written to the audit log, by topic and kind (event, undecodable, dead_letter, duplicate)",
    ["topic", "kind"],
)
RECORDS_ALREADY_STORED = Counter(
    "mlc_audit_records_already_stored_total",
    "Consumed records skipped because their position was already stored (redelivery, replay)",
)
STORE_WRITE_SECONDS = Histogram(
    "mlc_audit_store_write_seconds",
    "Time to write one batch (rows, read models, positions) in one SQL transaction",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STORE_RETRIES = Counter(
    "mlc_audit_store_retries_total",
    "Batches whose SQL write failed and was retried after a backoff",
)
SYNC_STATE_CUSTOMERS = Gauge(
    "mlc_audit_sync_state_customers",
    "Customer-audience pairs per sync status (recomputed periodically)",
    ["status"],
)
API_UNAUTHORIZED = Counter(
    "mlc_audit_api_unauthorized_total",
    "API requests refused for a missing or wrong bearer token",
)
