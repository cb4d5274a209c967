"""6. Side by side with a naive sync (``bench/naive_sync.py``), in the same invocation and conditions.

Both get the same SYSPRO company (same seed) and a fresh Mailchimp simulator with realistic latency
(150 ms per member PUT, 2 s per batch call) and the 10-connection limit. Each does an initial run,
then 10 customers change and each does a second run. The connector's time is from asking the poller
for a run until the loader has finished (Mailchimp up to date); its CPU is that of all four services
until the audit has caught up too. The naive sync runs as its own process, like a cron job would.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from typing import Any

import psutil

from bench.changes import change_phone, pick_synced
from bench.context import BenchContext
from bench.env import REPO
from bench.pipeline import counts, mailchimp_figures, track
from bench.results import median, target
from bench.scenarios.ceiling import LATENCY_MS
from bench.stack import BenchStack, running_stack
from simulators.stack import API_KEY, ODATA_PASSWORD, StackOptions

NAME = "naive"
TITLE = "Connector vs a naive full sync"
CHANGES = 10


def _options(customers: int) -> StackOptions:
    return StackOptions(
        customers=customers,
        poll_interval=86_400,
        mailchimp={"latency_ms": LATENCY_MS},
        env={"MLC_POLLER_RUN_ON_START": "false"},
    )


def _service_cpu(bench: BenchStack) -> float:
    total = 0.0
    for pid in bench.pids().values():
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


async def _connector_run(bench: BenchStack, n: int, timeout: float) -> dict[str, Any]:
    bench.stack.mailchimp.reset_stats()
    bench.stack.syspro.reset_stats()
    base = await counts(bench)
    cpu0 = _service_cpu(bench)
    t0 = time.monotonic()
    await bench.poll_now()
    stages, _ = await track(bench, n, t0, timeout, base=base)
    return {
        "seconds": round(stages["loader"], 3),
        "mailchimp_calls": mailchimp_figures(bench)["calls"],
        "odata_requests": bench.stack.syspro.stats.odata_requests,
        "rows_read": bench.stack.syspro.stats.rows_served,
        "cpu_seconds": round(_service_cpu(bench) - cpu0, 2),
    }


async def connector(ctx: BenchContext, n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    async with running_stack(ctx.bootstrap, NAME, _options(n)) as bench:
        first = await _connector_run(bench, n, ctx.load_timeout)
        picked = pick_synced(bench, CHANGES, rng)
        for customer in picked:
            change_phone(bench, customer, rng)
        second = await _connector_run(bench, len(picked), ctx.load_timeout)
    return {"initial": first, "after_changes": second, "changed": picked}


async def _naive_process(bench: BenchStack) -> dict[str, Any]:
    """One naive run as a subprocess; wall and CPU time of the whole process, calls as Mailchimp saw them."""
    bench.stack.mailchimp.reset_stats()
    bench.stack.syspro.reset_stats()
    env = {**os.environ, "NAIVE_ODATA_PASSWORD": ODATA_PASSWORD, "NAIVE_MAILCHIMP_KEY": API_KEY}
    args = [
        sys.executable,
        "-m",
        "bench.naive_sync",
        "--json",
        "--odata-url",
        bench.stack.odata_url,
        "--operator",
        "MLC",
        "--api-base",
        f"{bench.stack.mailchimp_server.url}/us6/3.0",
        "--list-id",
        bench.stack.options.list_id,
    ]
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    watched = psutil.Process(proc.pid)
    peak = cpu = 0.0

    async def watch() -> None:
        nonlocal peak, cpu
        while True:
            try:
                with watched.oneshot():
                    peak = max(peak, watched.memory_info().rss)
                    t = watched.cpu_times()
                    cpu = t.user + t.system
            except psutil.Error:
                return
            await asyncio.sleep(0.25)

    watcher = asyncio.create_task(watch())
    try:
        out, err = await proc.communicate()
    finally:
        watcher.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"naive sync failed ({proc.returncode}): {err.decode()[-2000:]}")
    own = json.loads(out.decode().strip().splitlines()[-1])
    return {
        "seconds": round(wall, 3),
        "mailchimp_calls": mailchimp_figures(bench)["calls"],
        "odata_requests": bench.stack.syspro.stats.odata_requests,
        "rows_read": bench.stack.syspro.stats.rows_served,
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak / 2**20, 1),
        "status_429": own["retries_429"],
        "statuses": own["statuses"],
    }


async def naive(ctx: BenchContext, n: int, changed: list[str], seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    async with running_stack(ctx.bootstrap, NAME, _options(n), services=()) as bench:
        first = await _naive_process(bench)
        for customer in changed:
            change_phone(bench, customer, rng)
        second = await _naive_process(bench)
    return {"initial": first, "after_changes": second}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a is not None and b else None


async def run(ctx: BenchContext) -> dict[str, Any]:
    n = ctx.sizes([2_000], [10_000])[0]
    runs = []
    for i in range(ctx.repeat):
        ours = await connector(ctx, n, seed=300 + i)
        theirs = await naive(ctx, n, ours["changed"], seed=300 + i)
        runs.append({"connector": ours, "naive": theirs})
    summary: dict[str, Any] = {}
    for phase in ("initial", "after_changes"):
        row: dict[str, Any] = {}
        for metric in ("seconds", "mailchimp_calls", "cpu_seconds", "rows_read"):
            c = median(r["connector"][phase][metric] for r in runs)
            v = median(r["naive"][phase][metric] for r in runs)
            row[metric] = {"connector": c, "naive": v, "naive_over_connector": _ratio(v, c)}
        summary[phase] = row
    return {
        "params": {"customers": n, "changes": CHANGES, "latency_ms": LATENCY_MS, "naive_concurrency": 10},
        "runs": runs,
        "summary": summary,
        "targets": [
            target(
                "Mailchimp calls after 10 changes, naive / connector",
                summary["after_changes"]["mailchimp_calls"]["naive_over_connector"],
                1.0,
                "x",
                True,
            ),
            target(
                "time after 10 changes, naive / connector",
                summary["after_changes"]["seconds"]["naive_over_connector"],
                1.0,
                "x",
                True,
            ),
        ],
    }
