"""Result files: one JSON per scenario under ``bench/results/``, with the machine and its load inside."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["check", "load_all", "median", "median_dict", "save", "target"]


def median(values: Iterable[float | int | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def median_dict(dicts: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Key-wise median of numeric dicts (e.g. CPU seconds per process over runs)."""
    keys = sorted({k for d in dicts for k in d})
    return {k: median(d.get(k) for d in dicts) for k in keys}


def target(
    name: str, measured: float | bool | None, goal: float | None, unit: str, higher_is_better: bool = True
) -> dict[str, Any]:
    """One line of the summary table. ``goal`` None: a figure shown without a verdict; a boolean
    ``measured`` is its own verdict."""
    if isinstance(measured, bool):
        met: bool | None = measured
    elif measured is None or goal is None:
        met = None
    else:
        met = measured >= goal if higher_is_better else measured <= goal
    return {
        "name": name,
        "measured": measured,
        "goal": goal,
        "unit": unit,
        "direction": ">=" if higher_is_better else "<=",
        "met": met,
    }


def check(condition: bool, message: str, problems: list[str]) -> None:
    if not condition:
        problems.append(message)


def save(directory: Path, scenario: str, document: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{scenario}.json"
    path.write_text(json.dumps(document, indent=1, sort_keys=False, default=str) + "\n")
    return path


def load_all(directory: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        out[doc.get("scenario", path.stem)] = doc
    return out
