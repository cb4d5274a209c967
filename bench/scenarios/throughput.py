"""1. Pipeline throughput: an initial load through all four services, Mailchimp without latency.

What is left is the connector's own cost (and the simulators', which share the two cores: their CPU
time is reported as ``harness``). One more run, not counted in the medians, is profiled with py-spy.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.pipeline import STAGES, LoadSpec, initial_load
from bench.results import median, median_dict, target

NAME = "throughput"
TITLE = "Pipeline throughput (initial load, zero-latency Mailchimp)"
GOAL = 10_000.0


def summarise_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in runs if r["finished"]]
    return {
        "runs": len(runs),
        "finished": len(done),
        "customers_per_second": median(r["customers_per_second"] for r in done),
        "wall_seconds": median(r["wall_seconds"] for r in done),
        "stage_seconds": {
            s: median(r["stage_seconds"].get(s) for r in done) for s in (*STAGES, "loader_start")
        },
        "stage_rate": {s: median(r["stage_rate"].get(s) for r in done) for s in STAGES},
        "cpu_seconds": median_dict([r["cpu_seconds"] for r in done]),
        "cpu_utilisation": median_dict([r["cpu_utilisation"] for r in done]),
        "peak_rss_mb": median_dict([r["peak_rss_mb"] for r in runs]),
        "max_peak_rss_mb": {
            k: max(r["peak_rss_mb"].get(k, 0.0) for r in runs) for k in runs[0]["peak_rss_mb"]
        },
        "mailchimp_calls": median(r["mailchimp"]["calls"] for r in done),
        **cpu_budget(done),
        "exactly_once": all(exactly_once(r) for r in done if "records" in r),
    }


def cpu_budget(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU milliseconds each process spends per customer, and the rate the machine's cores could
    sustain if they did nothing else: a figure that machine load distorts far less than wall time."""
    if not runs:
        return {"cpu_ms_per_customer": {}, "cpu_bound_customers_per_second": None}
    per = {
        k: median(r["cpu_seconds"][k] * 1000 / r["customers"] for r in runs) for k in runs[0]["cpu_seconds"]
    }
    total = sum(v for v in per.values() if v is not None)
    services = sum(per.get(s) or 0.0 for s in STAGES)
    cores = os.cpu_count() or 1
    return {
        "cpu_ms_per_customer": per,
        "cpu_ms_per_customer_total": round(total, 3),
        "cpu_ms_per_customer_services": round(services, 3),
        # Everything on this machine's cores: services, simulators (harness) and the broker.
        "cpu_bound_customers_per_second": round(cores * 1000 / total) if total else None,
        # The four services alone (simulators and Kafka elsewhere, as in production).
        "cpu_bound_services_only": round(cores * 1000 / services) if services else None,
    }


def exactly_once(run: dict[str, Any]) -> bool:
    """Every customer once on each topic: no duplicate after retries, nothing lost."""
    records: dict[str, int] = run["records"]
    return bool(
        records["syspro.customer.changed.v1"] == run["customers"]
        and records["mailchimp.member.upsert.v1"] == run["commands"]
        and records["mailchimp.member.result.v1"] == run["commands"]
        and records["mlc.customer.rejected.v1"] == run["rejections"]
    )


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = ctx.sizes([10_000], [100_000])[0]
    runs = []
    for _ in range(ctx.repeat):
        runs.append(await initial_load(ctx.bootstrap, NAME, LoadSpec(n, timeout=ctx.load_timeout)))
    summary = summarise_runs(runs)
    document: dict[str, Any] = {"params": {"customers": n, "mailchimp_latency_ms": 0}, "runs": runs}
    if ctx.profile:
        with tempfile.TemporaryDirectory(prefix="mlc-bench-profile-") as tmp:
            profiled = await initial_load(
                ctx.bootstrap,
                NAME,
                LoadSpec(n, profile_dir=Path(tmp), count_records=False, timeout=ctx.load_timeout),
            )
        document["profile"] = profiled.pop("profile", None)
        document["profiled_run"] = {
            k: profiled[k] for k in ("wall_seconds", "customers_per_second", "stage_seconds", "cpu_seconds")
        }
    ctx.shared["throughput_runs"] = runs
    document["summary"] = summary
    document["targets"] = [
        target("end-to-end customers/s", summary["customers_per_second"], GOAL, "customers/s", True),
        target("each customer exactly once on every topic", summary["exactly_once"], None, ""),
        target(
            "CPU-bound ceiling on this machine's cores",
            summary["cpu_bound_customers_per_second"],
            None,
            "customers/s",
        ),
    ]
    return document
