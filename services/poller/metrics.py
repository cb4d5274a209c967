"""The poller's Prometheus metrics. Labels are bounded sets: configured connection ids, change kinds,
HTTP status classes, error reasons; never customer codes."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "AUTH_REFUSALS",
    "ERRORS",
    "EVENTS_EMITTED",
    "INTERVAL",
    "KNOWN_CUSTOMERS",
    "LAST_SUCCESS",
    "ODATA_REQUESTS",
    "ROWS_READ",
    "RUNS",
    "RUN_SECONDS",
]

ROWS_READ = Counter("mlc_poller_rows_read_total", "ArCustomer rows read from SYSPRO OData", ["connection"])
EVENTS_EMITTED = Counter(
    "mlc_poller_events_emitted_total",
    "CustomerChanged events committed, by change kind",
    ["connection", "change"],
)
ODATA_REQUESTS = Counter(
    "mlc_poller_odata_requests_total",
    "OData requests by outcome: the HTTP status, or timeout / transport_error / malformed",
    ["connection", "status"],
)
RUN_SECONDS = Histogram(
    "mlc_poller_run_seconds",
    "Duration of poll runs, by strategy, scan kind and outcome",
    ["connection", "strategy", "scan", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
RUNS = Counter(
    "mlc_poller_runs_total", "Poll runs by outcome (completed / failed)", ["connection", "outcome"]
)
LAST_SUCCESS = Gauge(
    "mlc_poller_last_success_timestamp_seconds", "Unix time the last poll run completed", ["connection"]
)
ERRORS = Counter(
    "mlc_poller_errors_total",
    "Failures by reason (auth_refused, unreachable, server_error, bad_response, query_rejected, kafka, ...)",
    ["connection", "reason"],
)
AUTH_REFUSALS = Counter(
    "mlc_poller_auth_refusals_total",
    "Credentials refused by SYSPRO (OData 401/403, e.net ERROR on logon or session), before any retry",
    ["connection", "api"],
)
KNOWN_CUSTOMERS = Gauge(
    "mlc_poller_known_customers", "Customers in the poller's snapshot (last seen hashes)", ["connection"]
)
INTERVAL = Gauge(
    "mlc_poller_interval_seconds",
    "Configured poll interval; alerts compare the age of the last success with it",
    ["connection"],
)
