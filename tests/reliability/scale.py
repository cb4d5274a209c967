"""Sizes of the reliability suite, and where its figures go.

The default (``pytest``, CI) is a bounded subset; ``MLC_RELIABILITY_FULL=1`` (``make test-reliability``)
scales every test up to the sizes the issue asks for.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["CI", "FULL", "LONG", "REPORT_DIR", "Scale", "current", "record_figures"]

REPO = Path(__file__).resolve().parents[2]
FULL = os.environ.get("MLC_RELIABILITY_FULL", "") == "1"
#: Where each test writes its figures (kills survived, faults injected...) for docs/reliability.md.
REPORT_DIR = Path(os.environ.get("MLC_RELIABILITY_REPORT_DIR", REPO / ".run" / "reliability"))


@dataclass(frozen=True)
class Scale:
    full: bool
    customers: int
    kills_per_service: int
    changes_per_second: float
    broker_restarts: int
    soak_seconds: float
    #: Multiplies every fault's size (burst lengths, outage durations).
    fault_factor: int


CI = Scale(
    full=False,
    customers=2000,
    kills_per_service=2,
    changes_per_second=4.0,
    broker_restarts=1,
    soak_seconds=0,
    fault_factor=1,
)
LONG = Scale(
    full=True,
    customers=20_000,
    kills_per_service=5,
    changes_per_second=8.0,
    broker_restarts=2,
    soak_seconds=300,
    fault_factor=3,
)


def current() -> Scale:
    return LONG if FULL else CI


def record_figures(name: str, figures: dict[str, Any]) -> None:
    """Keep a test's figures as JSON (one file per test) and print them (``pytest -s`` shows them)."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    document = {"test": name, "scale": asdict(current()), **figures}
    (REPORT_DIR / f"{name}.json").write_text(json.dumps(document, indent=2, default=str))
    print(f"\n[reliability] {name}: {json.dumps(figures, default=str)}")
