"""Stop the Kafka broker in the middle of an initial load with ongoing changes, keep SYSPRO changing
while it is down for several poll intervals, start it again, and end with exactly the audience SYSPRO
and the policy call for, and one audit row per event.

The broker is the test's own (``PrivateBroker``), never the shared one. CI: one controlled stop.
``MLC_RELIABILITY_FULL=1``: a controlled stop, then a SIGKILL of the broker's JVM.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from shared.settings import KafkaSettings
from simulators.expectations import stack_audience
from tests.reliability.broker import PrivateBroker
from tests.reliability.chaos import ChangeStream
from tests.reliability.invariants import verdict
from tests.reliability.pipeline import Pipeline, eventually, running_pipeline
from tests.reliability.scale import Scale, record_figures
from tests.reliability.test_crash_recovery import chaos_options, opt_out_early

#: How long the broker stays down: several of the poller's 1.5 s intervals, and past the services'
#: request timeouts' first retries.
OUTAGE_SECONDS = 12.0


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "kafka")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def _members(pipeline: Pipeline) -> int:
    return int(pipeline.stack.mailchimp.list_summaries()[0]["members"])


def _loaded(pipeline: Pipeline, floor: int) -> bool:
    return _members(pipeline) >= floor


@pytest.mark.timeout(3600)
async def test_broker_restarts_mid_load_lose_nothing(
    private_broker: PrivateBroker, tmp_path: Path, scale: Scale
) -> None:
    kafka = KafkaSettings(bootstrap_servers=private_broker.bootstrap, namespace="rb.")
    customers = scale.customers // 2
    async with running_pipeline(kafka, tmp_path / "stack", chaos_options(scale, customers)) as pipeline:
        stream = ChangeStream(pipeline.stack.syspro, stack_audience(pipeline.stack), seed=5)
        outages: list[dict[str, object]] = []
        async with pipeline.supervised():
            opt_outs = asyncio.create_task(opt_out_early(pipeline, stream, count=3))
            stop = asyncio.Event()
            changes = asyncio.create_task(stream.run(stop, scale.changes_per_second))
            try:
                for n in range(scale.broker_restarts):
                    floor = _members(pipeline) + 100
                    await eventually(partial(_loaded, pipeline, floor), 300, 0.2, "the load to move on")
                    how = "SIGTERM (controlled)" if n % 2 == 0 else "SIGKILL"
                    members_before = _members(pipeline)
                    await asyncio.to_thread(private_broker.stop if n % 2 == 0 else private_broker.kill)
                    down = time.monotonic()
                    # The outage itself: SYSPRO keeps changing while nothing can reach Kafka.
                    await asyncio.sleep(OUTAGE_SECONDS)
                    await asyncio.to_thread(private_broker.start)
                    outages.append(
                        {
                            "how": how,
                            "down_seconds": round(time.monotonic() - down, 1),
                            "members_at_stop": members_before,
                            "changes_so_far": sum(stream.counts.values()),
                        }
                    )
                opted_out = await opt_outs
            finally:
                stop.set()
                await changes
            for service in pipeline.stack.processes:
                await pipeline.process(service).wait_ready(timeout=300)
            dump = await pipeline.settled(since=stream.last_change_at, timeout=900 if scale.full else 300)
        result = verdict(pipeline, dump, history=stream.history, opted_out=opted_out)

    record_figures(
        "broker_restart",
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "broker_restarts": len(outages),
            "outages": outages,
            "syspro_changes": dict(stream.counts),
            "opted_out": len(opted_out),
            **result.figures,
        },
    )
    assert len(outages) == scale.broker_restarts
    assert not result.problems, str(result)
