"""2. Against Mailchimp's ceiling: the initial load with realistic latency and the 10-connection limit.

With batch subscribe (500 members a call, about 2 s each) and 10 connections per key the API cannot
take more than 10 x 500 / 2 s = 2,500 members/s; the load is compared with that. The loader keeps one
connection spare (``MLC_MAILCHIMP_MAX_IN_FLIGHT`` = 9) for other clients of the same key, so its own
ceiling is 9/10 of the API's. Here the benchmark's account has no other client, so the loader is told
to use all ten (``MLC_MAILCHIMP_MAX_IN_FLIGHT=10``), which is what the ceiling assumes.
"""

from __future__ import annotations

from typing import Any

from bench.context import BenchContext
from bench.pipeline import LoadSpec, initial_load
from bench.results import median, target

NAME = "ceiling"
TITLE = "Against Mailchimp's ceiling (realistic latency, 10 connections)"
LATENCY_MS = {"member_put": 150.0, "batch_members": 2000.0}
CONNECTIONS = 10
BATCH = 500
CEILING = CONNECTIONS * BATCH / (LATENCY_MS["batch_members"] / 1000)  # members/s
ALLOWED = 1.2
#: The benchmark's Mailchimp account has no other client: the loader may use every connection.
LOADER_ENV = {"MLC_MAILCHIMP_MAX_IN_FLIGHT": str(CONNECTIONS)}


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = ctx.sizes([10_000], [100_000])[0]
    mailchimp = {"latency_ms": LATENCY_MS, "max_connections": CONNECTIONS}
    runs = []
    for _ in range(ctx.repeat):
        result = await initial_load(
            ctx.bootstrap, NAME, LoadSpec(n, mailchimp=mailchimp, timeout=ctx.load_timeout, env=LOADER_ENV)
        )
        if result["finished"]:
            ideal = result["commands"] / CEILING
            result["ideal_seconds"] = round(ideal, 2)
            result["ratio_to_ceiling"] = round(result["stage_seconds"]["loader"] / ideal, 3)
            start = result["stage_seconds"].get("loader_start", 0.0)
            result["mailchimp_window_seconds"] = round(result["stage_seconds"]["loader"] - start, 3)
            result["members_per_second"] = round(result["commands"] / result["stage_seconds"]["loader"], 1)
        runs.append(result)
    done = [r for r in runs if r["finished"]]
    summary = {
        "runs": len(runs),
        "finished": len(done),
        "ceiling_members_per_second": CEILING,
        "loader_seconds": median(r["stage_seconds"]["loader"] for r in done),
        "ideal_seconds": median(r["ideal_seconds"] for r in done),
        "ratio_to_ceiling": median(r["ratio_to_ceiling"] for r in done),
        "members_per_second": median(r["members_per_second"] for r in done),
        "mailchimp_window_seconds": median(r["mailchimp_window_seconds"] for r in done),
        "mailchimp_calls": median(r["mailchimp"]["calls"] for r in done),
        "members_per_call": median(r["commands"] / max(1, r["mailchimp"]["calls"]) for r in done),
        "mapper_seconds": median(r["stage_seconds"]["mapper"] for r in done),
        "customers_bound_seconds": round(ALLOWED * n / CEILING, 1),
        "status_429": median(r["mailchimp"]["status_429"] for r in done),
        "throttled": median(r["mailchimp"]["throttled"] for r in done),
        "max_concurrency": max((r["mailchimp"]["max_concurrency"] for r in done), default=None),
    }
    return {
        "params": {
            "customers": n,
            "latency_ms": LATENCY_MS,
            "max_connections": CONNECTIONS,
            "loader_env": LOADER_ENV,
        },
        "runs": runs,
        "summary": summary,
        "targets": [
            target(
                "time to load / ideal at the API ceiling", summary["ratio_to_ceiling"], ALLOWED, "x", False
            ),
            target("429 answers", summary["status_429"], 0, "", False),
        ],
    }
