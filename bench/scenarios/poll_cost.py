"""4. Cost per poll: what one poll run asks of SYSPRO, and what reaches Mailchimp, per strategy.

SYSPRO side (the poller alone, runs triggered with ``POST /poll/<connection>``): the initial run, a
run with nothing changed, and a run after 10 customers changed, for ``snapshot`` (read everything,
diff against the last seen hashes) and ``cursor`` (read rows whose ``TimeStamp`` moved). Figures come
from the SYSPRO simulator's own counters (requests served, rows served).

Mailchimp side (all four services, smallest size): API calls during a run with nothing changed
(target 0) and per changed customer after 10 changes.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from bench.changes import change_phone, pick_customers, pick_synced
from bench.context import BenchContext
from bench.observe import ProcessSampler, wait_until
from bench.pipeline import counts, mailchimp_figures, track
from bench.results import target
from bench.stack import BenchStack, running_stack
from simulators.stack import StackOptions

NAME = "poll_cost"
TITLE = "Cost per poll (SYSPRO requests and rows, Mailchimp calls)"
CHANGES = 10
STRATEGIES = ("snapshot", "cursor")


def _options(customers: int, strategy: str) -> StackOptions:
    return StackOptions(
        customers=customers,
        strategy=strategy,
        poll_interval=86_400,
        env={"MLC_POLLER_RUN_ON_START": "false"},
    )


async def _measured_poll(bench: BenchStack, sampler: ProcessSampler) -> dict[str, Any]:
    syspro = bench.stack.syspro
    syspro.reset_stats()
    cpu0 = sampler.cpu()["poller"]
    started = time.monotonic()
    report = await bench.poll_now()
    return {
        "seconds": round(time.monotonic() - started, 3),
        "odata_requests": syspro.stats.odata_requests,
        "rows_served": syspro.stats.rows_served,
        "poller_cpu_seconds": round(sampler.cpu()["poller"] - cpu0, 2),
        "full_scan": report.get("full_scan"),
        "changes_found": (report.get("created") or 0)
        + (report.get("updated") or 0)
        + (report.get("deleted") or 0),
    }


async def syspro_side(ctx: BenchContext, customers: int, strategy: str) -> dict[str, Any]:
    rng = random.Random(7)
    async with running_stack(
        ctx.bootstrap, NAME, _options(customers, strategy), services=("poller",)
    ) as bench:
        with ProcessSampler(bench.pids()) as sampler:
            initial = await _measured_poll(bench, sampler)
            unchanged = await _measured_poll(bench, sampler)
            for customer in pick_customers(customers, CHANGES, rng):
                change_phone(bench, customer, rng)
            changed = await _measured_poll(bench, sampler)
        return {
            "customers": customers,
            "strategy": strategy,
            "initial": initial,
            "unchanged": unchanged,
            "changed": changed,
            "poller_peak_rss_mb": sampler.peaks_mb()["poller"],
        }


async def mailchimp_side(ctx: BenchContext, customers: int) -> dict[str, Any]:
    rng = random.Random(11)
    async with running_stack(ctx.bootstrap, NAME, _options(customers, "snapshot")) as bench:
        t0 = time.monotonic()
        await bench.poll_now()
        await track(bench, customers, t0, ctx.load_timeout)
        initial_calls = mailchimp_figures(bench)["calls"]

        bench.stack.mailchimp.reset_stats()
        await bench.poll_now()
        # Nothing changed: nothing should move. Give the pipeline time to show it if something did.
        await _quiet(bench, seconds=5.0)
        idle = mailchimp_figures(bench)

        picked = pick_synced(bench, CHANGES, rng)
        for customer in picked:
            change_phone(bench, customer, rng)
        bench.stack.mailchimp.reset_stats()
        base = await counts(bench)
        await bench.poll_now()

        async def done() -> bool:
            return (await counts(bench))["loader"] - base["loader"] >= len(picked)

        await wait_until(done, timeout=120.0, what="the changes synced")
        await _quiet(bench, seconds=3.0)
        changed = mailchimp_figures(bench)
    return {
        "customers": customers,
        "initial_calls": initial_calls,
        "unchanged_run": idle,
        "changed_run": changed,
        "changed_customers": len(picked),
        "calls_per_changed_customer": round(changed["calls"] / len(picked), 2),
    }


async def _quiet(bench: BenchStack, seconds: float) -> None:
    """Let the pipeline run for ``seconds`` (so calls a run causes have time to happen); fail if a
    service died meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        bench.check_alive()
        await asyncio.sleep(0.5)


async def run(ctx: BenchContext) -> dict[str, Any]:
    sizes = ctx.sizes([10_000, 100_000], [10_000, 100_000, 1_000_000])
    syspro = []
    for customers in sizes:
        for strategy in STRATEGIES:
            syspro.append(await syspro_side(ctx, customers, strategy))
    mailchimp = await mailchimp_side(ctx, sizes[0])
    largest = [r for r in syspro if r["customers"] == sizes[-1]]
    cursor = next((r for r in largest if r["strategy"] == "cursor"), None)
    snapshot = next((r for r in largest if r["strategy"] == "snapshot"), None)
    summary = {
        "syspro": {
            f"{r['strategy']}@{r['customers']}": {
                phase: {k: r[phase][k] for k in ("odata_requests", "rows_served", "seconds")}
                for phase in ("initial", "unchanged", "changed")
            }
            for r in syspro
        },
        "mailchimp_calls_unchanged_run": mailchimp["unchanged_run"]["calls"],
        "mailchimp_calls_per_changed_customer": mailchimp["calls_per_changed_customer"],
    }
    targets = [
        target(
            "Mailchimp calls when nothing changed", mailchimp["unchanged_run"]["calls"], 0, "calls", False
        ),
        target(
            "Mailchimp calls per changed customer", mailchimp["calls_per_changed_customer"], None, "calls"
        ),
    ]
    if cursor is not None:
        targets.append(
            target(
                f"cursor rows read per run, {CHANGES} changes, {sizes[-1]:,} customers",
                cursor["changed"]["rows_served"],
                CHANGES,
                "rows",
                False,
            )
        )
    if snapshot is not None:
        summary["snapshot_rows_per_unchanged_run"] = snapshot["unchanged"]["rows_served"]
    return {
        "params": {"sizes": sizes, "changes": CHANGES, "strategies": list(STRATEGIES)},
        "syspro_runs": syspro,
        "mailchimp": mailchimp,
        "summary": summary,
        "targets": targets,
    }
