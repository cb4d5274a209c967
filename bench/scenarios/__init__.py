"""The scenarios, in the order ``python -m bench`` runs them (memory reuses throughput's runs)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench.context import BenchContext
from bench.scenarios import ceiling, freshness, memory, naive, poll_cost, throughput

__all__ = ["SCENARIOS", "Scenario"]

Scenario = Callable[[BenchContext], Awaitable[dict[str, Any]]]

SCENARIOS: dict[str, tuple[str, Scenario]] = {
    m.NAME: (m.TITLE, m.run) for m in (throughput, ceiling, freshness, poll_cost, memory, naive)
}
