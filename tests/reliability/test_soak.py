"""A short soak, in the long suite only (``MLC_RELIABILITY_FULL=1``): a steady stream of SYSPRO changes
for several minutes with light random API faults on both sides, then the same end-of-run verdict as
the crash tests, and no service's memory growing through the second half. ``make soak``
(``bench/soak.py``) is the longer, report-oriented version.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from shared.settings import KafkaSettings
from simulators.expectations import stack_audience
from simulators.stack import StackOptions
from tests.reliability.chaos import ChangeStream
from tests.reliability.invariants import verdict
from tests.reliability.pipeline import Pipeline, running_pipeline
from tests.reliability.scale import FULL, Scale, record_figures

#: Largest RSS growth of a service over the second half of the soak.
MAX_GROWTH_MB = 40.0


def _rss_mb(pipeline: Pipeline) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, proc in pipeline.stack.processes.items():
        if proc.proc is not None and proc.alive:
            out[name] = psutil.Process(proc.proc.pid).memory_info().rss / 1e6
    return out


@pytest.mark.skipif(not FULL, reason="the soak runs in the long suite only (MLC_RELIABILITY_FULL=1)")
@pytest.mark.timeout(3600)
async def test_a_steady_stream_with_light_faults_stays_exact_and_flat(
    kafka: KafkaSettings, tmp_path: Path, scale: Scale
) -> None:
    options = StackOptions(
        customers=5000,
        seed=13,
        poll_interval=2.0,
        mailchimp={"error_rate": 0.01, "latency_ms": {"default": 15.0}},
        syspro={"faults": {"error_rate": 0.02, "malformed_rate": 0.01, "seed": 13}},
        env={"MLC_LOADER_BACKOFF_MAX_SECONDS": "2"},
    )
    async with running_pipeline(kafka, tmp_path / "stack", options) as p:
        stream = ChangeStream(p.stack.syspro, stack_audience(p.stack), seed=17)
        samples: list[tuple[float, dict[str, float]]] = []
        started = time.monotonic()
        stop = asyncio.Event()
        async with p.supervised():
            changes = asyncio.create_task(stream.run(stop, 5.0))
            try:
                while time.monotonic() - started < scale.soak_seconds:
                    samples.append((time.monotonic() - started, _rss_mb(p)))
                    await asyncio.sleep(10.0)
            finally:
                stop.set()
                await changes
            p.stack.mailchimp.set_faults(error_rate=0.0)
            p.stack.syspro.clear_faults()
            dump = await p.settled(since=stream.last_change_at, timeout=600)
        result = verdict(p, dump, history=stream.history, opted_out=[])

    half = scale.soak_seconds / 2
    growth: dict[str, float] = {}
    for service in p.stack.processes:
        second = [rss[service] for t, rss in samples if t >= half and service in rss]
        if len(second) >= 2:
            growth[service] = round(max(second) - second[0], 1)
    record_figures(
        "soak",
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": scale.soak_seconds,
            "syspro_changes": dict(stream.counts),
            "rss_growth_second_half_mb": growth,
            **result.figures,
        },
    )
    assert not result.problems, str(result)
    assert all(g <= MAX_GROWTH_MB for g in growth.values()), growth
