"""3. Freshness: how long a change in SYSPRO takes to reach Mailchimp, with a 5 s poll interval.

After an initial load, customers get a new telephone number one at a time at random moments spread
over a window. The delay of each is from the wall-clock moment the simulator row changed to the
``occurred_at`` of the ``MemberSynced`` the loader wrote for that customer afterwards (read back from
the result topic). Mailchimp answers with realistic latency (150 ms per member PUT).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

from bench.changes import change_phone, pick_synced
from bench.context import BenchContext
from bench.kafka_io import read_events
from bench.observe import wait_until
from bench.pipeline import counts, track
from bench.results import median, target
from bench.scenarios.ceiling import LATENCY_MS
from bench.stack import running_stack
from shared.events import MemberSynced
from shared.topics import MEMBER_RESULT
from simulators.stack import StackOptions

NAME = "freshness"
TITLE = "Freshness (change in SYSPRO -> MemberSynced, 5 s poll interval)"
INTERVAL = 5.0
SLACK = 2.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: with 40 samples p99 is the maximum, honestly)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def one_run(
    ctx: BenchContext, strategy: str, customers: int, changes: int, window: float, seed: int
) -> dict[str, Any]:
    options = StackOptions(
        customers=customers,
        strategy=strategy,
        poll_interval=INTERVAL,
        mailchimp={"latency_ms": LATENCY_MS},
    )
    rng = random.Random(seed)
    async with running_stack(ctx.bootstrap, NAME, options) as bench:
        # The poller starts its first run at start-up: wait for the initial load to reach Mailchimp.
        await track(bench, customers, time.monotonic(), ctx.load_timeout, until=("loader",))
        picked = pick_synced(bench, changes, rng)
        base = await counts(bench)
        moments = sorted(rng.uniform(0, window) for _ in picked)
        changed_at: dict[str, float] = {}
        start = time.monotonic()
        for customer, moment in zip(picked, moments, strict=True):
            await asyncio.sleep(max(0.0, start + moment - time.monotonic()))
            changed_at[customer] = change_phone(bench, customer, rng)

        progress: dict[str, float] = {}

        async def synced() -> bool:
            bench.check_alive()
            now = await counts(bench)
            progress.update({k: now[k] - base[k] for k in ("poller", "mapper", "commands", "loader")})
            return progress["loader"] >= len(picked)

        try:
            await wait_until(synced, timeout=window + 120.0, interval=0.5, what="every change synced")
        except TimeoutError as exc:
            raise TimeoutError(
                f"{exc}: {len(picked)} changes, progress since the changes began {progress}"
            ) from None
        events = await read_events(bench.stack.kafka, MEMBER_RESULT.name)
    delays: dict[str, float] = {}
    for _, event in events:
        if isinstance(event, MemberSynced) and event.customer in changed_at:
            delay = event.occurred_at.timestamp() - changed_at[event.customer]
            if delay >= 0 and (event.customer not in delays or delay < delays[event.customer]):
                delays[event.customer] = delay
    values = list(delays.values())
    return {
        "strategy": strategy,
        "customers": customers,
        "changes": len(picked),
        "window_seconds": window,
        "matched": len(values),
        "p50_seconds": round(percentile(values, 50), 3) if values else None,
        "p90_seconds": round(percentile(values, 90), 3) if values else None,
        "p99_seconds": round(percentile(values, 99), 3) if values else None,
        "max_seconds": round(max(values), 3) if values else None,
        "mean_seconds": round(statistics.fmean(values), 3) if values else None,
        "delays": sorted(round(v, 3) for v in values),
    }


async def run(ctx: BenchContext) -> dict[str, Any]:
    customers = ctx.sizes([2_000], [10_000])[0]
    changes, window = (40, 30.0) if ctx.quick else (200, 60.0)
    strategies = ["snapshot"] if ctx.quick else ["snapshot", "cursor"]
    runs = []
    for strategy in strategies:
        for i in range(ctx.repeat):
            runs.append(await one_run(ctx, strategy, customers, changes, window, seed=100 + i))
    summary: dict[str, Any] = {}
    for strategy in strategies:
        mine = [r for r in runs if r["strategy"] == strategy]
        summary[strategy] = {
            "p50_seconds": median(r["p50_seconds"] for r in mine),
            "p99_seconds": median(r["p99_seconds"] for r in mine),
            "max_seconds": max((r["max_seconds"] or 0.0) for r in mine),
            "matched": sum(r["matched"] for r in mine),
            "changes": sum(r["changes"] for r in mine),
        }
    goal = INTERVAL + SLACK
    return {
        "params": {
            "customers": customers,
            "changes": changes,
            "window_seconds": window,
            "poll_interval_seconds": INTERVAL,
            "latency_ms": LATENCY_MS,
        },
        "runs": runs,
        "summary": summary,
        "targets": [
            target(f"p99 delay ({s})", summary[s]["p99_seconds"], goal, "s", False) for s in strategies
        ],
    }
