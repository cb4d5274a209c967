"""One initial load through the four services, observed stage by stage.

The poller starts idle (long interval, no run on start); once every service is ready the harness asks
it for a run (``POST /poll/<connection>``) and that moment is time zero. Each stage is done when its
output count reaches what its input will produce, read from the services' /metrics every 0.2 s:

- poller: ``CustomerChanged`` committed (``mlc_poller_events_emitted_total``) = customers;
- mapper: changes mapped (``mlc_mapper_changes_total``) = customers (output: commands + rejections);
- loader: commands finished (``mlc_loader_synced_total`` + ``mlc_loader_failed_total``) = commands;
- audit: for every audited topic, records stored (``mlc_records_consumed_total{service="audit"}``,
  counted after the SQL commit) = records the other services produced to it.

Afterwards the topics are read back to count records exactly (a duplicate or a loss shows here).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.env import broker_pid
from bench.kafka_io import count_records
from bench.observe import EMPTY, Metrics, ProcessSampler
from bench.profiling import PySpy
from bench.stack import BenchStack, running_stack
from shared.topics import CUSTOMER_CHANGED, CUSTOMER_REJECTED, MEMBER_RESULT, MEMBER_UPSERT
from simulators.stack import StackOptions

__all__ = [
    "AUDITED",
    "LoadSpec",
    "LoadUnfinished",
    "audit_done",
    "counts",
    "downsample",
    "initial_load",
    "mailchimp_figures",
    "member_count",
    "track",
]

log = logging.getLogger("bench")

#: Topics the audit stores (services/audit/app.py AUDITED_TOPICS, without the dead-letter topic, which
#: the audit itself may write to).
AUDITED = (
    "syspro.customer.changed.v1",
    "syspro.poll.run.v1",
    "mailchimp.member.upsert.v1",
    "mailchimp.member.result.v1",
    "mlc.customer.rejected.v1",
)
STAGES = ("poller", "mapper", "loader", "audit")


@dataclass
class LoadSpec:
    customers: int
    mailchimp: dict[str, Any] = field(default_factory=dict)
    profile_dir: Path | None = None
    count_records: bool = True
    timeout: float = 1800.0
    env: dict[str, str] = field(default_factory=dict)


def produced(metrics: dict[str, Metrics], topic: str) -> float:
    return sum(
        metrics[s].total("mlc_records_produced_total", service=s, topic=topic)
        for s in ("poller", "mapper", "loader")
        if s in metrics
    )


def audit_done(metrics: dict[str, Metrics]) -> bool:
    audit = metrics.get("audit")
    if audit is None:
        return False
    return all(
        audit.total("mlc_records_consumed_total", service="audit", topic=t) >= produced(metrics, t)
        for t in AUDITED
    )


def member_count(bench: BenchStack) -> int:
    sim = bench.stack.mailchimp
    with sim.lock:
        return len(sim.store.lists[bench.stack.options.list_id].members)


def mailchimp_figures(bench: BenchStack) -> dict[str, Any]:
    stats = bench.stack.mailchimp.stats
    return {
        "calls": stats.total_calls,
        "calls_by_kind": {k: sum(v.values()) for k, v in stats.calls.items()},
        "status_429": stats.count("*", 429),
        "throttled": stats.throttled_total,
        "max_concurrency": max(stats.max_concurrency.values(), default=0),
    }


def _counts(m: dict[str, Metrics]) -> dict[str, float]:
    """Cumulative counts per stage; a service that is not running counts zero."""
    m = {s: m.get(s, EMPTY) for s in STAGES}
    return {
        "poller": m["poller"].total("mlc_poller_events_emitted_total"),
        "mapper": m["mapper"].total("mlc_mapper_changes_total"),
        "commands": m["mapper"].total("mlc_mapper_commands_total"),
        "rejections": m["mapper"].total("mlc_mapper_rejections_total"),
        "loader": m["loader"].total("mlc_loader_synced_total") + m["loader"].total("mlc_loader_failed_total"),
        "audit": m["audit"].total("mlc_records_consumed_total", service="audit"),
        "mailchimp_requests": m["loader"].total("mlc_loader_requests_total")
        + m["loader"].total("mlc_loader_in_flight_requests"),
    }


class LoadUnfinished(TimeoutError):
    """The load hit its time bound or stalled; ``done`` and ``series`` say how far it got."""

    def __init__(self, message: str, done: dict[str, float], series: list[Any]) -> None:
        super().__init__(message)
        self.done = done
        self.series = series


def batch_stats(metrics: dict[str, Metrics]) -> dict[str, dict[str, float]]:
    """Per consuming service: batches, mean records per batch and mean seconds per batch (process and
    commit), from ``mlc_batch_seconds`` and ``mlc_records_consumed_total``. Small batches with a fixed
    cost each are a latency bottleneck that CPU figures do not show."""
    out: dict[str, dict[str, float]] = {}
    for service in ("mapper", "loader", "audit"):
        m = metrics.get(service)
        if m is None:
            continue
        count = m.total("mlc_batch_seconds_count", service=service)
        seconds = m.total("mlc_batch_seconds_sum", service=service)
        consumed = m.total("mlc_records_consumed_total", service=service)
        if count:
            out[service] = {
                "batches": count,
                "records_per_batch": round(consumed / count, 1),
                "seconds_per_batch": round(seconds / count, 4),
                "busy_seconds": round(seconds, 2),
            }
    return out


async def track(
    bench: BenchStack,
    n: int,
    t0: float,
    timeout: float,
    base: dict[str, float] | None = None,
    until: tuple[str, ...] = STAGES,
) -> tuple[dict[str, float], list[Any]]:
    """Seconds from ``t0`` until each stage has handled ``n`` more customers than in ``base`` (counts
    read before the run), and the progress series (for the plot). ``loader_start`` is the first
    Mailchimp request."""
    base = base or {}
    done: dict[str, float] = {}
    series: list[Any] = []
    deadline = t0 + timeout
    last_change = time.monotonic()
    previous: dict[str, float] = {}
    while not all(stage in done for stage in until):
        bench.check_alive()
        m = await bench.all_metrics()
        now = time.monotonic() - t0
        c = _counts(m)
        d = {k: v - base.get(k, 0.0) for k, v in c.items()}
        series.append([round(now, 2), d["poller"], d["mapper"], d["loader"], d["audit"]])
        if d["mailchimp_requests"] > 0:
            done.setdefault("loader_start", now)
        if d["poller"] >= n:
            done.setdefault("poller", now)
        if "poller" in done and d["mapper"] >= n:
            done.setdefault("mapper", now)
        if "mapper" in done and d["loader"] >= d["commands"]:
            done.setdefault("loader", now)
        if "loader" in done and audit_done(m):
            done.setdefault("audit", now)
        if c != previous:
            previous, last_change = c, time.monotonic()
        if time.monotonic() > deadline:
            raise LoadUnfinished(f"load of {n} not finished after {timeout:.0f}s: {d}", done, series)
        if time.monotonic() - last_change > 300:
            raise LoadUnfinished(f"load of {n} stalled for 300s at {d}", done, series)
        await asyncio.sleep(0.2)
    return done, series


async def counts(bench: BenchStack) -> dict[str, float]:
    return _counts(await bench.all_metrics())


def downsample(series: list[Any], points: int = 150) -> list[Any]:
    if len(series) <= points:
        return series
    step = len(series) / points
    picked = [series[int(i * step)] for i in range(points)]
    return [*picked, series[-1]]


async def initial_load(bootstrap: str, scenario: str, spec: LoadSpec) -> dict[str, Any]:
    """Run one initial load of ``spec.customers`` and return its figures.

    A load that hits ``spec.timeout`` (or stalls) is returned with ``finished: False`` and what was
    measured until then (peak memory stays meaningful), rather than raising.
    """
    options = StackOptions(
        customers=spec.customers,
        poll_interval=86_400,
        mailchimp=spec.mailchimp,
        env={"MLC_POLLER_RUN_ON_START": "false", **spec.env},
    )
    n = spec.customers
    async with running_stack(bootstrap, scenario, options) as bench:
        with ProcessSampler(bench.pids()) as sampler:
            broker = broker_pid()
            if broker is not None:
                sampler.add("kafka_broker", broker)
            spy = PySpy(bench.pids(), spec.profile_dir).start() if spec.profile_dir else None
            bench.stack.mailchimp.reset_stats()
            bench.stack.syspro.reset_stats()
            sampler.reset_peaks()
            cpu0 = sampler.cpu()
            t0 = time.monotonic()
            poll = asyncio.create_task(bench.poll_now())
            unfinished: str | None = None
            try:
                stages, series = await track(bench, n, t0, spec.timeout)
                report = await poll
            except LoadUnfinished as exc:
                unfinished, stages, series, report = str(exc), exc.done, exc.series, {}
            finally:
                if not poll.done():
                    poll.cancel()
            wall = max(stages.values()) if not unfinished else time.monotonic() - t0
            cpu1 = sampler.cpu()
            profile = spy.stop() if spy else None
        final_metrics = await bench.all_metrics()
        final = _counts(final_metrics)
        result: dict[str, Any] = {
            "customers": n,
            "finished": unfinished is None,
            "wall_seconds": round(wall, 3),
            "customers_per_second": round(n / wall, 1) if not unfinished else None,
            "stage_seconds": {s: round(t, 3) for s, t in stages.items()},
            "stage_rate": {s: round(n / t, 1) for s, t in stages.items() if s in STAGES},
            "commands": int(final["commands"]),
            "rejections": int(final["rejections"]),
            "loader_finished": int(final["loader"]),
            "cpu_seconds": {k: round(cpu1[k] - cpu0[k], 2) for k in cpu1},
            "cpu_utilisation": {k: round((cpu1[k] - cpu0[k]) / wall, 2) for k in cpu1},
            "peak_rss_mb": sampler.peaks_mb(),
            "batches": batch_stats(final_metrics),
            "poll_report": {k: report.get(k) for k in ("rows_read", "odata_requests", "created")},
            "syspro": {
                "odata_requests": bench.stack.syspro.stats.odata_requests,
                "rows_served": bench.stack.syspro.stats.rows_served,
            },
            "mailchimp": mailchimp_figures(bench),
            "members": member_count(bench),
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "progress": downsample(series),
        }
        if unfinished:
            result["unfinished"] = unfinished
        if profile is not None:
            result["profile"] = profile
        if spec.count_records and not unfinished:
            started = time.monotonic()
            topics = (CUSTOMER_CHANGED.name, MEMBER_UPSERT.name, MEMBER_RESULT.name, CUSTOMER_REJECTED.name)
            result["records"] = await count_records(bench.stack.kafka, topics)
            result["records_read_seconds"] = round(time.monotonic() - started, 1)
        return result
