"""5. Memory: peak RSS of each service process during an initial load, by customer count.

RSS is sampled every 0.25 s with psutil. The throughput scenario's runs, when made in the same
invocation at a size listed here, are reused rather than repeated. A load that hits the time bound
(``--load-timeout``) is recorded as unfinished with the peaks seen until then.
"""

from __future__ import annotations

from typing import Any

from bench.context import BenchContext
from bench.pipeline import LoadSpec, initial_load
from bench.results import target

NAME = "memory"
TITLE = "Peak memory per service (initial load)"
GOAL_MB = 300.0
SERVICES = ("poller", "mapper", "loader", "audit")


#: Growth between two sizes below this is sampling noise (arenas, GC timing), not per-customer state.
NOISE_MB = 10.0


def extrapolate(runs: list[dict[str, Any]], customers: int) -> dict[str, float | None] | None:
    """Peak RSS per service at ``customers`` on the line through the smallest and largest finished
    runs: per-customer state (hashes, member states, owners) grows about linearly. None for a
    service whose growth between the two sizes is within noise."""
    done = [r for r in runs if r["finished"]]
    if len(done) < 2 or done[0]["customers"] == done[-1]["customers"]:
        return None
    a, b = done[0], done[-1]
    out: dict[str, float | None] = {}
    for s in SERVICES:
        growth = b["peak_rss_mb"][s] - a["peak_rss_mb"][s]
        if growth < NOISE_MB:
            out[s] = None
            continue
        per = growth / (b["customers"] - a["customers"])
        out[s] = round(b["peak_rss_mb"][s] + per * (customers - b["customers"]), 1)
    return out


async def run(ctx: BenchContext) -> dict[str, Any]:
    # Quick: 50k rather than 100k keeps the run within minutes; the line through two sizes is
    # extrapolated to 1M below, which says early whether the 1M run will fit.
    sizes = ctx.sizes([10_000, 50_000], [100_000, 1_000_000])
    reused = {r["customers"]: r for r in ctx.shared.get("throughput_runs", [])}
    by_size: list[dict[str, Any]] = []
    for n in sizes:
        if n in reused:
            run_ = reused[n]
            source = "throughput run"
        else:
            run_ = await initial_load(
                ctx.bootstrap, NAME, LoadSpec(n, count_records=False, timeout=ctx.load_timeout)
            )
            source = "own run"
        by_size.append(
            {
                "customers": n,
                "source": source,
                "finished": run_["finished"],
                "wall_seconds": run_["wall_seconds"],
                "peak_rss_mb": run_["peak_rss_mb"],
                "stage_seconds": run_["stage_seconds"],
                **({"unfinished": run_["unfinished"]} if not run_["finished"] else {}),
            }
        )
    largest = by_size[-1]
    summary: dict[str, Any] = {str(r["customers"]): r["peak_rss_mb"] for r in by_size}
    summary["extrapolated_1m_mb"] = extrapolate(by_size, 1_000_000)
    return {
        "params": {"sizes": sizes, "sample_interval_seconds": 0.25},
        "runs": by_size,
        "summary": summary,
        "targets": [
            target(
                f"peak RSS {s} at {largest['customers']:,} customers",
                largest["peak_rss_mb"].get(s),
                GOAL_MB,
                "MB",
                False,
            )
            for s in SERVICES
        ],
    }
