"""The loader's Prometheus metrics (``mlc_loader_*``).

Label values are bounded: endpoint kinds, HTTP status codes, reason codes, outcomes, and credential
*names* from the connections file (never a key, a token or an email address).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.loader.limiter import AdaptiveLimiter

__all__ = [
    "BULK_MEMBERS",
    "FAILED",
    "FRESHNESS",
    "GROUP_SIZE",
    "IN_FLIGHT",
    "LIMIT",
    "OUTAGES",
    "REQUESTS",
    "REQUEST_SECONDS",
    "RETRIES",
    "SYNCED",
    "THROTTLES",
    "limiter_changed",
]

REQUESTS = Counter(
    "mlc_loader_requests_total",
    "Mailchimp API requests by endpoint, method and answer (HTTP status, or timeout/connection)",
    ["endpoint", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "mlc_loader_request_seconds",
    "Latency of Mailchimp API requests by endpoint (time holding a connection slot)",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
IN_FLIGHT = Gauge(
    "mlc_loader_in_flight_requests",
    "Mailchimp requests in flight from this worker, per credential",
    ["credential"],
)
LIMIT = Gauge(
    "mlc_loader_connection_limit",
    "This worker's current connection limit per credential (share of the key's limit, after AIMD cuts)",
    ["credential"],
)
GROUP_SIZE = Gauge(
    "mlc_loader_group_size", "Loader workers in the consumer group, as this worker believes it"
)
RETRIES = Counter(
    "mlc_loader_retries_total",
    "Mailchimp requests retried, by endpoint and cause (429, 403, 503, 5xx, timeout, connection)",
    ["endpoint", "cause"],
)
THROTTLES = Counter(
    "mlc_loader_throttled_total",
    "Throttle answers (429, bare 403, 503 Request Blocked) per credential and kind",
    ["credential", "kind"],
)
SYNCED = Counter(
    "mlc_loader_synced_total", "Commands that took effect, by outcome and path", ["outcome", "via"]
)
FAILED = Counter(
    "mlc_loader_failed_total", "Commands that failed, by reason and permanence", ["reason", "permanent"]
)
BULK_MEMBERS = Counter(
    "mlc_loader_bulk_members_total",
    "Members sent through batch subscribe, by what happened to them (created, fallback, failed)",
    ["result"],
)
OUTAGES = Counter(
    "mlc_loader_outage_retries_total",
    "Batches left uncommitted and retried later because Mailchimp answered nothing (an outage)",
)
RENAMES_HELD = Counter(
    "mlc_loader_renames_held_total",
    "Renames held until the customer's earlier commands were committed (a batch cut before the rename, "
    "or a wait for an earlier batch)",
)


_GAUGES: dict[str, tuple[Gauge, Gauge]] = {}


def limiter_changed(limiter: AdaptiveLimiter) -> None:
    """Publish a limiter's in-flight count and limit (its ``on_change`` hook, called per request)."""
    gauges = _GAUGES.get(limiter.name)
    if gauges is None:
        gauges = _GAUGES[limiter.name] = (IN_FLIGHT.labels(limiter.name), LIMIT.labels(limiter.name))
    gauges[0].set(limiter.in_flight)
    gauges[1].set(limiter.limit)


FRESHNESS = Histogram(
    "mlc_loader_freshness_seconds",
    "From the poller seeing a change in SYSPRO to its result in Mailchimp (replays excluded)",
    buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600),
)
