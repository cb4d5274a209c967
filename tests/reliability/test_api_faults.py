"""API faults on both sides, one after another against one running pipeline: 429 storms, throttling
403s, 5xx bursts, timeouts, dropped connections, slow answers, malformed OData pages, expiring
sessions, a SYSPRO outage and Mailchimp outages shorter and longer than the retry bound.

Every phase must converge once its fault clears, with the retries visible in /metrics and bounded,
and nothing may be dead-lettered or failed: every fault here is transient. The last test checks the
whole run (audience, audit, topics, secrets) and writes the figures.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.events import MemberSynced, PollRunFailed
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from shared.topics import MEMBER_RESULT, POLL_RUN
from simulators.expectations import compare
from simulators.mailchimp.config import FaultName
from tests.conftest import delete_namespace
from tests.helpers import read_events
from tests.reliability.faults import (
    MAX_ATTEMPTS,
    PhaseResult,
    Targets,
    fault_options,
    mailchimp_faults,
    run_phase,
    slow_answers,
    syspro_faults,
)
from tests.reliability.invariants import verdict
from tests.reliability.pipeline import Pipeline, eventually, running_pipeline
from tests.reliability.scale import Scale, current, record_figures

RESULTS: dict[str, PhaseResult] = {}
THROTTLE_429: FaultName = "429"
THROTTLE_403: FaultName = "403"
ERROR_500: FaultName = "500"
BLOCKED_503: FaultName = "503"


@pytest.fixture(scope="module")
async def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=f"t{uuid.uuid4().hex[:10]}.")
    await ensure_topics(kafka)
    workdir: Path = tmp_path_factory.mktemp("faults")
    try:
        async with running_pipeline(kafka, workdir, fault_options(current())) as running:
            await eventually(lambda: compare(running.stack).ok, 180, 0.5, "the initial load")
            yield running
    finally:
        await delete_namespace(kafka)


@pytest.fixture(scope="module")
def targets(pipeline: Pipeline) -> Targets:
    return Targets(pipeline)


def _keep(result: PhaseResult) -> PhaseResult:
    RESULTS[result.name] = result
    assert not result.loader.get("failed"), result.summary()
    return result


@pytest.mark.timeout(600)
async def test_a_429_storm_is_retried_until_it_passes(
    pipeline: Pipeline, targets: Targets, scale: Scale
) -> None:
    mc = pipeline.stack.mailchimp

    def inject() -> None:
        mc.set_faults(max_connections=2, throttle_mode="429")
        mc.queue_faults(*[THROTTLE_429] * (20 * scale.fault_factor))

    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "429-storm",
            inject,
            lambda: mc.set_faults(max_connections=10, queued=[]),
            served=mailchimp_faults,
            changes=12,
            clear_after_convergence=True,
        )
    )
    assert result.loader.get("retries.429", 0) > 0, result.summary()
    assert result.loader.get("throttled", 0) > 0, result.summary()


@pytest.mark.timeout(600)
async def test_throttling_403s_are_retried_not_failed(
    pipeline: Pipeline, targets: Targets, scale: Scale
) -> None:
    mc = pipeline.stack.mailchimp

    def inject() -> None:
        mc.set_faults(max_connections=2, throttle_mode="403")
        mc.queue_faults(*[THROTTLE_403] * (6 * scale.fault_factor))

    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "403-throttle",
            inject,
            lambda: mc.set_faults(max_connections=10, throttle_mode="429", queued=[]),
            served=mailchimp_faults,
            changes=12,
            clear_after_convergence=True,
        )
    )
    assert result.loader.get("retries.403", 0) > 0, result.summary()


@pytest.mark.timeout(600)
async def test_5xx_bursts_are_retried(pipeline: Pipeline, targets: Targets, scale: Scale) -> None:
    mc = pipeline.stack.mailchimp

    def inject() -> None:
        mc.queue_faults(*([ERROR_500] * 6 + [BLOCKED_503] * 3) * scale.fault_factor)

    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "5xx-burst",
            inject,
            lambda: mc.set_faults(queued=[]),
            served=mailchimp_faults,
            clear_after_convergence=True,
        )
    )
    assert result.loader.get("retries.5xx", 0) > 0, result.summary()
    assert result.loader.get("retries.503", 0) > 0, result.summary()


@pytest.mark.timeout(600)
async def test_timeouts_are_retried(pipeline: Pipeline, targets: Targets) -> None:
    mc = pipeline.stack.mailchimp

    def inject() -> None:
        # The simulator holds the answer 5 s; the loader gives up after its 3 s timeout.
        mc.set_faults(timeout_seconds=5, timeout_mode="504")
        mc.queue_faults("timeout", "timeout", "timeout")

    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "timeout",
            inject,
            lambda: mc.set_faults(queued=[], timeout_seconds=120),
            served=lambda p: sum(1 for e in p.stack.mailchimp.request_log() if e.get("ms", 0) >= 2900),
            clear_after_convergence=True,
        )
    )
    assert result.loader.get("retries.timeout", 0) > 0, result.summary()


@pytest.mark.timeout(600)
async def test_connections_dropped_mid_answer_are_retried(pipeline: Pipeline, targets: Targets) -> None:
    mc = pipeline.stack.mailchimp

    def inject() -> None:
        mc.set_faults(timeout_seconds=0.2, timeout_mode="drop")
        mc.queue_faults("timeout", "timeout", "timeout")

    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "dropped",
            inject,
            lambda: mc.set_faults(queued=[], timeout_seconds=120, timeout_mode="504"),
            served=mailchimp_faults,
            clear_after_convergence=True,
        )
    )
    retried = sum(v for k, v in result.loader.items() if k.startswith("retries."))
    assert retried > 0, result.summary()


@pytest.mark.timeout(600)
async def test_slow_answers_are_waited_for_not_retried(pipeline: Pipeline, targets: Targets) -> None:
    mc = pipeline.stack.mailchimp
    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "slow",
            lambda: mc.set_faults(latency_ms={"default": 1500.0}),
            lambda: mc.set_faults(latency_ms={}),
            served=lambda p: slow_answers(p, 1400.0),
            clear_after_convergence=True,
        )
    )
    assert not any(k.startswith("retries.") for k in result.loader), result.summary()


@pytest.mark.timeout(600)
async def test_malformed_odata_pages_are_read_again(pipeline: Pipeline, targets: Targets) -> None:
    sp = pipeline.stack.syspro
    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "malformed",
            lambda: sp.set_faults(malformed_rate=0.4, applies_to="odata", seed=5),
            sp.clear_faults,
            served=syspro_faults,
            clear_after_convergence=True,
        )
    )
    assert result.poller.get("odata.malformed", 0) > 0, result.summary()


@pytest.mark.timeout(600)
async def test_sessions_expiring_every_few_requests_are_renewed(pipeline: Pipeline, targets: Targets) -> None:
    sp = pipeline.stack.syspro
    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "session-expiry",
            lambda: sp.set_switches(odata_auth_expire_every=3),
            lambda: sp.set_switches(odata_auth_expire_every=0),
            served=syspro_faults,
            clear_after_convergence=True,
        )
    )
    assert result.poller.get("auth_refusals", 0) > 0, result.summary()


@pytest.mark.timeout(600)
async def test_a_syspro_outage_of_several_poll_intervals_catches_up_after(
    pipeline: Pipeline, targets: Targets, scale: Scale
) -> None:
    sp = pipeline.stack.syspro
    since = datetime.now(UTC)
    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "syspro-outage",
            lambda: sp.set_faults(error_rate=1.0, error_statuses=[503], applies_to="odata"),
            sp.clear_faults,
            served=syspro_faults,
            hold=5.0 * scale.fault_factor,
        )
    )
    failed = [r for r in await read_events(pipeline.kafka, POLL_RUN.name) if isinstance(r, PollRunFailed)]
    assert [r for r in failed if r.started_at >= since], "no PollRunFailed published during the outage"
    assert result.poller.get("runs_failed", 0) >= 2, result.summary()


@pytest.mark.timeout(600)
async def test_a_mailchimp_outage_shorter_than_the_retry_bound_fails_nothing(
    pipeline: Pipeline, targets: Targets
) -> None:
    mc = pipeline.stack.mailchimp
    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "mailchimp-short-outage",
            lambda: mc.set_faults(error_rate=1.0),
            lambda: mc.set_faults(error_rate=0.0),
            served=mailchimp_faults,
            hold=3.0,
        )
    )
    assert result.loader.get("retries.5xx", 0) > 0, result.summary()


@pytest.mark.timeout(600)
async def test_a_mailchimp_outage_longer_than_the_retry_bound_holds_the_batch_back(
    pipeline: Pipeline, targets: Targets, scale: Scale
) -> None:
    mc = pipeline.stack.mailchimp
    result = _keep(
        await run_phase(
            pipeline,
            targets,
            "mailchimp-long-outage",
            lambda: mc.set_faults(error_rate=1.0),
            lambda: mc.set_faults(error_rate=0.0),
            served=mailchimp_faults,
            hold=20.0 * scale.fault_factor,
            timeout=300,
        )
    )
    assert result.loader.get("outage_retries", 0) > 0, result.summary()


@pytest.mark.timeout(900)
async def test_no_transient_fault_left_a_failure_a_dead_letter_or_a_secret(pipeline: Pipeline) -> None:
    dump = await pipeline.settled(since=datetime.now(UTC), timeout=300)
    result = verdict(pipeline, dump, history={}, opted_out=[])
    synced = [r for r in await read_events(pipeline.kafka, MEMBER_RESULT.name) if isinstance(r, MemberSynced)]
    most_attempts = max((r.attempts for r in synced), default=0)
    phases: dict[str, Any] = {name: r.summary() for name, r in RESULTS.items()}
    record_figures(
        "api_faults",
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "phases": phases,
            "faults_injected": sum(r.faults_served for r in RESULTS.values()),
            "most_attempts_in_a_result": most_attempts,
            **result.figures,
        },
    )
    assert not result.problems, str(result)
    assert most_attempts <= MAX_ATTEMPTS
