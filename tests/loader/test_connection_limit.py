"""Mailchimp's 10-connection limit holds with one loader worker and with a group of two.

The simulator answers every PUT after 30 ms and refuses an API key's 11th simultaneous request with a
429, as Mailchimp does; 2,000 commands make the loader's concurrency build up to its limit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.events import MemberSynced
from shared.settings import KafkaSettings
from tests.helpers import running, wait_for
from tests.loader.support import (
    Result,
    command,
    loader_service,
    produce_commands,
    results,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)

COMMANDS = 2000
#: Force the single-member path: this is about the limiter, not batch subscribe.
NO_BULK = 10**9


def _commands(prefix: str) -> list:  # type: ignore[type-arg]
    return [
        command(f"{prefix}{n}", f"{prefix.lower()}{n}@example.com", merge_fields={"FNAME": f"N{n}"})
        for n in range(COMMANDS)
    ]


@pytest.mark.slow
async def test_one_worker_keeps_under_the_limit_and_uses_it(kafka: KafkaSettings, tmp_path: Path) -> None:
    files = write_loader_files(tmp_path)
    commands = _commands("A")
    with served_mailchimp(latency_ms={"member_put": 30}) as mc:
        await produce_commands(kafka, commands)
        async with running(loader_service(kafka, files, mc.api_base, bulk_min_members=NO_BULK)):
            found = await wait_for_results(kafka, COMMANDS, timeout=180)
        stats = mc.sim.stats
        assert mc.throttled() == 0
        assert mc.max_concurrency() == 9
        assert stats.count("member_put", 200) == COMMANDS
    assert all(isinstance(r, MemberSynced) and r.outcome == "created" for r in found)
    assert len(found) == COMMANDS


@pytest.mark.slow
async def test_two_workers_share_the_limit_even_when_one_joins_mid_stream_and_5xx_are_retried(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    commands = _commands("B")
    with served_mailchimp(latency_ms={"member_put": 30}, error_rate=0.2) as mc:
        await produce_commands(kafka, commands)
        first = loader_service(kafka, files, mc.api_base, "w1", bulk_min_members=NO_BULK, max_batch=100)
        second = loader_service(kafka, files, mc.api_base, "w2", bulk_min_members=NO_BULK, max_batch=100)

        async def some_done() -> list[Result] | None:
            return await _at_least(kafka, 300)

        async with running(first):
            before_join: list[Result] = await wait_for(
                some_done, timeout=120, interval=0.5, message="300 results"
            )
            assert len(before_join) < COMMANDS
            async with running(second):
                await wait_for(lambda: second.processor.batches > 0, timeout=60, message="second worker busy")
                assert first.limiters.share == second.limiters.share == 4
                found = await wait_for_results(kafka, COMMANDS, timeout=240)
        stats = mc.sim.stats
        assert stats.count("*", 500) > 0
        assert mc.throttled() == 0
        assert mc.max_concurrency() <= 9
    assert {r.causation_id for r in found} == {c.event_id for c in commands}
    assert all(isinstance(r, MemberSynced) for r in found)
    assert sum(r.attempts > 1 for r in found) > 0


async def _at_least(kafka: KafkaSettings, n: int) -> list[Result] | None:
    found = await results(kafka)
    return found if len(found) >= n else None
