"""Counters and a short request log, so tests can assert what a client actually asked SYSPRO for.

Query strings are logged with credential parameters blanked: e.net carries passwords in the URL.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["LoggedRequest", "SimStats", "redact_query"]

_SECRET_PARAMS = frozenset({"operatorpassword", "companypassword", "userid"})


def redact_query(query: str) -> str:
    """The decoded query string, readable in a test failure, with passwords and session ids as ``***``."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{k}={'***' if k.lower() in _SECRET_PARAMS else v}" for k, v in pairs)


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int
    rows: int
    fault: str | None


@dataclass
class SimStats:
    """What the simulator has served since start or the last reset."""

    odata_requests: int = 0
    rows_served: int = 0
    auth_failures: int = 0
    logons: int = 0
    logoffs: int = 0
    enet_calls: int = 0
    enet_evictions: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    log: deque[LoggedRequest] = field(default_factory=lambda: deque(maxlen=2000))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, path: str, query: str, status: int, rows: int, fault: str | None) -> None:
        with self.lock:
            self.paths[path] += 1
            self.rows_served += rows
            if fault is not None:
                self.faults[fault] += 1
            self.log.append(LoggedRequest(method, path, redact_query(query), status, rows, fault))

    def reset(self) -> None:
        with self.lock:
            self.odata_requests = 0
            self.rows_served = 0
            self.auth_failures = 0
            self.logons = 0
            self.logoffs = 0
            self.enet_calls = 0
            self.enet_evictions = 0
            self.faults.clear()
            self.paths.clear()
            self.log.clear()

    def as_dict(self, log_entries: int = 100) -> dict[str, Any]:
        with self.lock:
            recent = list(self.log)[-log_entries:] if log_entries else []
            return {
                "odata_requests": self.odata_requests,
                "rows_served": self.rows_served,
                "auth_failures": self.auth_failures,
                "logons": self.logons,
                "logoffs": self.logoffs,
                "enet_calls": self.enet_calls,
                "enet_evictions": self.enet_evictions,
                "faults": dict(self.faults),
                "paths": dict(self.paths),
                "log": [asdict(r) for r in recent],
            }
