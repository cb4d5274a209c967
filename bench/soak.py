"""Soak: a steady stream of SYSPRO changes for a while, all four services running, then a verdict.

    python -m bench.soak --seconds 600 [--rate 5] [--customers 5000]

Every ``--sample`` seconds it records each service's consumer lag (``mlc_consumer_lag_records``, and
the exact number of records not processed yet, counted on the topics), RSS and error counters. At the
end it stops changing, waits for the backlog to drain, and reports the backlog at the end, the RSS
trend of each service over the second half (least-squares slope) and the errors.
Exit status 1 when the lag did not drain, a service's RSS grew more than ``--max-growth-mb`` over the
second half, an error counter moved, or a service died. The result is saved to
``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.changes import change_phone
from bench.env import RESULTS_DIR, broker_pid, ensure_kafka, load_average, machine_info
from bench.kafka_io import unprocessed
from bench.observe import FOREIGN_CORES, ForeignLoad, Metrics, ProcessSampler
from bench.pipeline import AUDITED, counts, track
from bench.results import save
from bench.scenarios.ceiling import LATENCY_MS
from bench.stack import BenchStack, Interrupted, install_signal_handlers, running_stack
from shared.topics import CUSTOMER_CHANGED, DEAD_LETTER, MEMBER_RESULT, MEMBER_UPSERT
from simulators.stack import SERVICES, StackOptions

log = logging.getLogger("bench")

#: Counters that must not move during a soak (all labels summed), per service.
ERROR_COUNTERS = {
    "poller": ("mlc_poller_errors_total", "mlc_transaction_failures_total"),
    "mapper": ("mlc_dead_letters_total", "mlc_transaction_failures_total"),
    "loader": ("mlc_dead_letters_total", "mlc_transaction_failures_total", "mlc_loader_failed_total"),
    "audit": ("mlc_dead_letters_total", "mlc_audit_store_retries_total"),
}
LAG_SERVICES = ("mapper", "loader", "audit")
#: What each consuming service reads (for the exact count of records it has not processed yet).
INPUTS = {
    "mapper": (CUSTOMER_CHANGED.name, MEMBER_RESULT.name),
    "loader": (MEMBER_UPSERT.name,),
    "audit": (*AUDITED, DEAD_LETTER.name),
}


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def lag(metrics: dict[str, Metrics]) -> dict[str, float]:
    return {s: metrics[s].total("mlc_consumer_lag_records") for s in LAG_SERVICES if s in metrics}


async def backlog(bench: BenchStack) -> dict[str, int]:
    """Records each consumer has not processed yet, counted on the topics (see ``unprocessed``)."""
    return {s: await unprocessed(bench.stack.kafka, s, INPUTS[s]) for s in LAG_SERVICES}


def errors(metrics: dict[str, Metrics]) -> dict[str, float]:
    out: dict[str, float] = {}
    for service, names in ERROR_COUNTERS.items():
        for name in names:
            out[f"{service}:{name}"] = metrics[service].total(name) if service in metrics else 0.0
    out["poller:failed_runs"] = metrics["poller"].total("mlc_poller_runs_total", outcome="failed")
    return out


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    bootstrap = ensure_kafka()
    options = StackOptions(
        customers=args.customers,
        strategy=args.strategy,
        poll_interval=args.interval,
        mailchimp={"latency_ms": LATENCY_MS},
    )
    rng = random.Random(args.seed)
    async with running_stack(bootstrap, "soak", options) as bench:
        await track(bench, args.customers, time.monotonic(), 1800.0, until=("loader", "audit"))
        with ProcessSampler(bench.pids(), interval=1.0) as sampler:
            samples, changes = await _stream(bench, sampler, args, rng)
            drained, drain_seconds, end = await _drain(bench, args.drain, args.interval)
            sampler.sample()
        alive = {name: p.alive for name, p in bench.stack.processes.items()}
        final = await counts(bench)
    first, last = samples[0], samples[-1]
    half = args.seconds / 2
    trend: dict[str, Any] = {}
    for service in SERVICES:
        points = [
            (s["t"], s["rss_mb"][service]) for s in samples if s["t"] >= half and service in s["rss_mb"]
        ]
        k = slope(points)
        trend[service] = {
            "slope_mb_per_hour": round(k * 3600, 1),
            "growth_second_half_mb": round(k * (args.seconds - half), 1),
            "start_mb": first["rss_mb"].get(service),
            "end_mb": last["rss_mb"].get(service),
            "peak_mb": sampler.peaks_mb().get(service),
        }
    error_delta = {k: v - first["errors"].get(k, 0.0) for k, v in end["errors"].items()}
    problems: list[str] = []
    if not drained:
        problems.append(
            f"lag did not drain within {args.drain:.0f}s: {end['unprocessed']} records unprocessed"
        )
    for service, t in trend.items():
        if t["growth_second_half_mb"] > args.max_growth_mb:
            problems.append(f"{service} RSS grew {t['growth_second_half_mb']} MB over the second half")
    moved = {k: v for k, v in error_delta.items() if v > 0}
    if moved:
        problems.append(f"error counters moved: {moved}")
    dead = [name for name, ok in alive.items() if not ok]
    if dead:
        problems.append(f"services died: {dead}")
    return {
        "params": {k: v for k, v in vars(args).items() if k != "output"},
        "changes_made": changes,
        "loader_finished_total": final["loader"],
        "unprocessed_at_end": end["unprocessed"],
        # The services' gauge counts transaction markers as lag: it stays at one per partition read.
        "lag_gauge_at_end": end["lag"],
        "drained": drained,
        "drain_seconds": drain_seconds,
        "memory_trend": trend,
        "errors": error_delta,
        "problems": problems,
        "ok": not problems,
        "samples": samples,
    }


async def _stream(
    bench: BenchStack, sampler: ProcessSampler, args: argparse.Namespace, rng: random.Random
) -> tuple[list[dict[str, Any]], int]:
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    next_sample = started
    changes = 0
    codes = [f"{i:06d}" for i in range(1, args.customers + 1)]
    while (now := time.monotonic()) - started < args.seconds:
        bench.check_alive()
        due = int((now - started) * args.rate)
        while changes < due:
            change_phone(bench, rng.choice(codes), rng)
            changes += 1
        if now >= next_sample:
            metrics = await bench.all_metrics()
            sampler.sample()
            samples.append(
                {
                    "t": round(now - started, 1),
                    "lag": lag(metrics),
                    "unprocessed": await backlog(bench),
                    "rss_mb": {k: round(v.last_rss / 2**20, 1) for k, v in sampler.stats.items()},
                    "errors": errors(metrics),
                    "changes": changes,
                }
            )
            log.info(
                "t=%.0fs changes=%d unprocessed=%s lag gauge=%s",
                now - started,
                changes,
                samples[-1]["unprocessed"],
                samples[-1]["lag"],
            )
            next_sample += args.sample
        await asyncio.sleep(0.05)
    return samples, changes


async def _drain(bench: BenchStack, timeout: float, interval: float) -> tuple[bool, float, dict[str, Any]]:
    """Wait for every consumer to have processed every record, after one more poll interval (changes
    made just before the end are read by the next poll run)."""
    started = time.monotonic()
    await asyncio.sleep(interval + 1.0)
    while True:
        bench.check_alive()
        metrics = await bench.all_metrics()
        remaining = await backlog(bench)
        current: dict[str, Any] = {"unprocessed": remaining, "lag": lag(metrics), "errors": errors(metrics)}
        elapsed = time.monotonic() - started
        if not any(remaining.values()):
            return True, round(elapsed, 1), current
        if elapsed > timeout:
            return False, round(elapsed, 1), current
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description="Steady changes, then a verdict.")
    p.add_argument("--seconds", type=float, default=600.0, help="how long to keep changing customers")
    p.add_argument("--rate", type=float, default=5.0, help="changes per second")
    p.add_argument("--customers", type=int, default=5000)
    p.add_argument("--strategy", choices=["snapshot", "cursor"], default="snapshot")
    p.add_argument("--interval", type=float, default=5.0, help="poll interval, seconds")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    p.add_argument(
        "--drain", type=float, default=120.0, help="seconds allowed for the lag to drain at the end"
    )
    p.add_argument(
        "--max-growth-mb", type=float, default=25.0, help="allowed RSS growth over the second half"
    )
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "soak.json")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("aiokafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def _main() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        install_signal_handlers(task)
        broker = broker_pid()
        with ForeignLoad([broker] if broker else []) as foreign:
            result = await soak(args)
        return {**result, **foreign.figures()}

    before = load_average()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        result = asyncio.run(_main())
    except (KeyboardInterrupt, asyncio.CancelledError, Interrupted):
        print("interrupted: services stopped, run topics deleted", file=sys.stderr)
        return 130
    document = {
        "scenario": "soak",
        "title": "Soak (steady changes)",
        "mode": "soak",
        "repeat": 1,
        "started_at": started_at,
        "duration_seconds": round(time.monotonic() - started, 1),
        "machine": machine_info(),
        "load_average_before": before,
        "load_average_after": load_average(),
        "under_load": (result.get("foreign_cpu_cores") or 0.0) > FOREIGN_CORES,
        **result,
    }
    save(args.output.parent, args.output.stem, document)
    summary = {
        k: document[k]
        for k in (
            "changes_made",
            "unprocessed_at_end",
            "lag_gauge_at_end",
            "drained",
            "memory_trend",
            "errors",
        )
    }
    print(json.dumps(summary, indent=1))
    print("soak OK" if result["ok"] else "soak FAILED: " + "; ".join(result["problems"]))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
