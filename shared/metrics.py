"""Prometheus metrics every service exports; service-specific ones live with their service.

Names follow ``mlc_<what>_<unit>``; label values are bounded sets (topics, reasons, outcomes), never
customer codes or emails.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_SECONDS",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "RECORDS_CONSUMED",
    "RECORDS_PRODUCED",
    "SERVICE_INFO",
    "SERVICE_READY",
    "TRANSACTION_FAILURES",
]

SERVICE_INFO = Gauge(
    "mlc_service_info", "Static facts about this process", ["service", "instance", "version"]
)
SERVICE_READY = Gauge("mlc_service_ready", "1 when the service reports ready on /readyz", ["service"])

RECORDS_CONSUMED = Counter(
    "mlc_records_consumed_total", "Records consumed, by service and topic", ["service", "topic"]
)
RECORDS_PRODUCED = Counter(
    "mlc_records_produced_total", "Records produced, by service and topic", ["service", "topic"]
)
DEAD_LETTERS = Counter(
    "mlc_dead_letters_total",
    "Records sent to the dead-letter topic, by service, source topic and reason",
    ["service", "topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "mlc_consumer_lag_records",
    "Records between a consumer's position and the partition's end",
    ["group", "topic", "partition"],
)
BATCH_SECONDS = Histogram(
    "mlc_batch_seconds",
    "Time to process and commit one consumed batch",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TRANSACTION_FAILURES = Counter(
    "mlc_transaction_failures_total",
    "Kafka transactions aborted and retried, by service",
    ["service"],
)
