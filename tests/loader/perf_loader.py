"""Loader throughput: N new-member upserts through one loader against a simulator in its own process.

Not a test (pytest does not collect it). Run from the repository root with the broker up::

    .venv/bin/python -m tests.loader.perf_loader --commands 100000 --latency zero
    .venv/bin/python -m tests.loader.perf_loader --commands 100000 --latency realistic

``realistic``: member PUT 150 ms, batch subscribe 4 ms per member (500 members in 2 s); the ceiling
with Mailchimp's 10 connections is 10 x 500 / 2 s = 2,500 members/s (9 x 500 / 2 s = 2,250/s at the
loader's default of 9 in flight).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from shared.kafka import ensure_topics
from shared.metrics import RECORDS_CONSUMED
from shared.settings import KafkaSettings
from shared.topics import MEMBER_UPSERT
from simulators._server import free_port
from tests.helpers import REPO, running
from tests.loader.support import command, loader_service, produce_commands, write_loader_files

PROFILES: dict[str, dict[str, Any]] = {
    "zero": {},
    "realistic": {"latency_ms": {"member_put": 150}, "batch_latency_per_member_ms": 4.0},
    "realistic-fixed": {"latency_ms": {"member_put": 150, "batch_members": 2000}},
}


def _consumed() -> float:
    return float(RECORDS_CONSUMED.labels("loader", MEMBER_UPSERT.name)._value.get())


async def main(commands: int, profile: str, max_batch: int, max_in_flight: int) -> None:
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "sim", "mailchimp", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as admin:
            for _ in range(100):
                with contextlib.suppress(httpx.HTTPError):
                    if (await admin.get("/_admin/stats")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            await admin.patch("/_admin/faults", json=PROFILES[profile])
            kafka = KafkaSettings(namespace=f"perf{uuid.uuid4().hex[:8]}.")
            await ensure_topics(kafka)
            files = write_loader_files(Path(tempfile.mkdtemp()))
            started = time.perf_counter()
            await produce_commands(
                kafka,
                (
                    command(
                        f"P{n}", f"p{n}@example.com", merge_fields={"FNAME": f"N{n}"}, tags_add=["customer"]
                    )
                    for n in range(commands)
                ),
            )
            print(f"produced {commands} commands in {time.perf_counter() - started:.1f} s")
            service = loader_service(
                kafka, files, f"{base}/{{dc}}/3.0", max_in_flight=max_in_flight, max_batch=max_batch
            )
            before = _consumed()
            started = time.perf_counter()
            cpu_started = time.process_time()
            marks: dict[int, float] = {}
            busy: list[int] = []
            async with running(service):
                while _consumed() - before < commands:
                    busy.extend(limiter.in_flight for limiter in service.limiters.limiters())
                    done = _consumed() - before
                    for pct in (10, 90):
                        if pct not in marks and done >= commands * pct / 100:
                            marks[pct] = time.perf_counter()
                    await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            stats = (await admin.get("/_admin/stats")).json()
        steady = (commands * 0.8) / (marks[90] - marks[10]) if 10 in marks and 90 in marks else float("nan")
        print(
            f"profile={profile} commands={commands} max_batch={max_batch} max_in_flight={max_in_flight}: "
            f"{elapsed:.1f} s, "
            f"{commands / elapsed:,.0f} commands/s overall, {steady:,.0f}/s between 10% and 90%"
        )
        print(f"loader CPU: {cpu:.1f} s, {cpu / commands * 1e6:.0f} us per command")
        print(
            f"connection slots in use (sampled every 50 ms): {sum(busy) / max(1, len(busy)):.2f} on average"
        )
        print(
            f"simulator: calls={stats['calls']} throttled={stats['throttled_total']} "
            f"max_concurrency={stats['max_concurrency']}"
        )
    finally:
        sim.terminate()
        sim.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--latency", choices=sorted(PROFILES), default="zero")
    parser.add_argument("--max-batch", type=int, default=5000)
    parser.add_argument("--max-in-flight", type=int, default=9, help="MLC_MAILCHIMP_MAX_IN_FLIGHT (1-10)")
    args = parser.parse_args()
    asyncio.run(main(args.commands, args.latency, args.max_batch, args.max_in_flight))
