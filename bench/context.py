"""What every scenario is given: the broker, the size mode, repetitions, and where to put things."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BenchContext"]


@dataclass
class BenchContext:
    bootstrap: str
    quick: bool
    repeat: int
    profile: bool = True
    #: Largest customer count a scenario may use (bounds the 1M runs).
    max_customers: int = 1_000_000
    #: Upper bound on one load's duration before it is recorded as unfinished.
    load_timeout: float = 1800.0
    results_dir: Path = Path("bench/results")
    #: Figures one scenario hands to another within one invocation (memory reuses throughput's runs).
    shared: dict[str, Any] = field(default_factory=dict)
    #: Replaces every scenario's customer counts (smoke tests, trying a size out).
    customers: int | None = None

    def sizes(self, quick: list[int], full: list[int]) -> list[int]:
        if self.customers is not None:
            return [self.customers]
        return [n for n in (quick if self.quick else full) if n <= self.max_customers]
