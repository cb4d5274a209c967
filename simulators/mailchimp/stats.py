"""Per-key connection slots and the counters tests and benchmarks read back.

A credential is never stored or shown: every key and token is reduced to a short SHA-256 label, which
:func:`credential_label` computes for anyone holding the credential.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["SimStats", "StatsCollector", "credential_label"]


def credential_label(secret: str) -> str:
    """A stable, non-reversible name for an API key or OAuth token."""
    return "cred-" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


@dataclass(slots=True)
class _KeyUsage:
    in_flight: int = 0
    max_in_flight: int = 0
    throttled: int = 0
    calls: int = 0


class SimStats(BaseModel):
    """A snapshot of the counters.

    ``calls[kind][status]`` counts finished requests; ``max_concurrency`` is the highest number of
    requests a credential had in flight at once; ``throttled`` counts requests refused for being over
    the connection limit (whatever surface the refusal had: 429, bare 403 or 503).
    """

    model_config = ConfigDict(frozen=True)

    calls: dict[str, dict[str, int]]
    total_calls: int
    throttled: dict[str, int]
    throttled_total: int
    max_concurrency: dict[str, int]
    in_flight: dict[str, int]

    def count(self, kind: str, status: int | None = None) -> int:
        """Calls of ``kind`` (``"*"`` for every kind), optionally only those answered with ``status``."""
        kinds = self.calls.values() if kind == "*" else [self.calls.get(kind, {})]
        return sum(
            n for by_status in kinds for s, n in by_status.items() if status is None or s == str(status)
        )

    def max_concurrency_for(self, secret: str) -> int:
        return self.max_concurrency.get(credential_label(secret), 0)

    def throttled_for(self, secret: str) -> int:
        return self.throttled.get(credential_label(secret), 0)


class StatsCollector:
    """Mutable counters owned by the server's event loop; snapshots are taken under the simulator lock."""

    def __init__(self, log_size: int) -> None:
        self._calls: Counter[tuple[str, int]] = Counter()
        self._keys: dict[str, _KeyUsage] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)

    def try_acquire(self, label: str, limit: int) -> bool:
        """Take one of ``label``'s ``limit`` connection slots; False (and counted) when all are taken."""
        usage = self._keys.get(label)
        if usage is None:
            usage = self._keys[label] = _KeyUsage()
        if usage.in_flight >= limit:
            usage.throttled += 1
            return False
        usage.in_flight += 1
        usage.max_in_flight = max(usage.max_in_flight, usage.in_flight)
        return True

    def release(self, label: str) -> None:
        self._keys[label].in_flight -= 1

    def record(self, entry: dict[str, Any]) -> None:
        self._calls[(entry["kind"], entry["status"])] += 1
        label = entry.get("credential")
        if label is not None and label in self._keys:
            self._keys[label].calls += 1
        if self.log.maxlen:
            self.log.append(entry)

    def reset(self) -> None:
        """Zero the counters; requests in flight keep their slots (and become the new maximum)."""
        self._calls.clear()
        self.log.clear()
        for usage in self._keys.values():
            usage.max_in_flight = usage.in_flight
            usage.throttled = 0
            usage.calls = 0

    def snapshot(self) -> SimStats:
        calls: dict[str, dict[str, int]] = {}
        for (kind, status), n in sorted(self._calls.items()):
            calls.setdefault(kind, {})[str(status)] = n
        throttled = {label: u.throttled for label, u in self._keys.items() if u.throttled}
        return SimStats(
            calls=calls,
            total_calls=sum(self._calls.values()),
            throttled=throttled,
            throttled_total=sum(throttled.values()),
            max_concurrency={label: u.max_in_flight for label, u in self._keys.items()},
            in_flight={label: u.in_flight for label, u in self._keys.items() if u.in_flight},
        )
