"""SIGKILL every service several times during an initial load with ongoing changes, restart it each
time, and end with exactly the audience SYSPRO and the policy call for: nothing lost, nothing doubled,
no opted-out contact resubscribed, one audit row per event, no secret anywhere.

CI: 2,000 customers, each service killed twice. ``MLC_RELIABILITY_FULL=1``: 20,000 customers, five
kills each.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from services.mapper.email_identity import EmailIdentity, read_email
from shared.settings import KafkaSettings
from simulators.expectations import stack_audience
from simulators.stack import StackOptions
from tests.reliability.chaos import ChangeStream, KillSchedule
from tests.reliability.invariants import verdict
from tests.reliability.pipeline import Pipeline, eventually, running_pipeline
from tests.reliability.scale import Scale, record_figures

OPTED_OUT = 5


def chaos_options(scale: Scale, customers: int) -> StackOptions:
    """Latency on both simulators stretches the initial load over the kills: a 500-member batch call
    takes up to 30 s and an OData page 150 ms: the initial load of 2,000 takes ~15 s, and kills
    land on work in progress."""
    return StackOptions(
        customers=customers,
        seed=7,
        poll_interval=1.5,
        page_size=500 if not scale.full else 2000,
        mailchimp={"batch_latency_per_member_ms": 60.0, "latency_ms": {"default": 20.0}},
        syspro={"faults": {"latency_ms": 150.0}},
        env={"MLC_LOADER_MAX_BATCH": "1000"},
    )


async def opt_out_early(pipeline: Pipeline, stream: ChangeStream, count: int = OPTED_OUT) -> list[str]:
    """As soon as they are members, a few contacts unsubscribe themselves in Mailchimp. Their customers
    are protected from renames and deletes (``ChangeStream.protected``), not from other changes."""
    audience = stack_audience(pipeline.stack)
    emails: list[str] = []
    for code in stream.sole_owners(count):
        row = pipeline.stack.syspro.get(code)
        assert row is not None
        identity = read_email(row, audience.email)
        assert isinstance(identity, EmailIdentity)
        stream.protected.add(code)
        emails.append(identity.address)
    sim = pipeline.stack.mailchimp
    for email in emails:
        await eventually(partial(sim.member, pipeline.list_id, email), 300, 0.2, email)
        sim.unsubscribe_by_contact(pipeline.list_id, email)
    return emails


@pytest.mark.timeout(3600)
async def test_every_service_killed_repeatedly_mid_load_loses_and_doubles_nothing(
    kafka: KafkaSettings, tmp_path: Path, scale: Scale
) -> None:
    async with running_pipeline(kafka, tmp_path / "stack", chaos_options(scale, scale.customers)) as pipeline:
        started = time.monotonic()
        stream = ChangeStream(pipeline.stack.syspro, stack_audience(pipeline.stack), seed=11)
        schedule = KillSchedule(pipeline, scale.kills_per_service, seed=23)
        async with pipeline.supervised():
            opt_outs = asyncio.create_task(opt_out_early(pipeline, stream))
            stop = asyncio.Event()
            changes = asyncio.create_task(stream.run(stop, scale.changes_per_second))
            try:
                await schedule.run(asyncio.get_running_loop().time(), asyncio.Event())
                opted_out = await opt_outs
            finally:
                stop.set()
                await changes
            chaos_seconds = time.monotonic() - started
            for service in pipeline.stack.processes:
                await pipeline.process(service).wait_ready(timeout=180)
            dump = await pipeline.settled(since=stream.last_change_at, timeout=900 if scale.full else 240)
        settle_seconds = time.monotonic() - started - chaos_seconds
        result = verdict(pipeline, dump, history=stream.history, opted_out=opted_out)

    record_figures(
        "crash_recovery",
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "kills_survived": len(schedule.kills),
            "kills_by_service": schedule.survived(),
            "kills": [k.__dict__ for k in schedule.kills],
            "syspro_changes": dict(stream.counts),
            "opted_out": len(opted_out),
            **result.figures,
            "chaos_seconds": round(chaos_seconds, 1),
            "settle_seconds": round(settle_seconds, 1),
        },
    )
    assert len(schedule.kills) == 4 * scale.kills_per_service
    assert not result.problems, str(result)
    assert int(str(result.figures["members_compared"])) >= scale.customers // 2
