"""Retries: throttles and server faults are retried in place; an outage holds the batch back instead
of failing it; a request that keeps failing while Mailchimp answers others is ``retries_exhausted``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from services.loader.credentials import target_for
from services.loader.limiter import AdaptiveLimiter
from services.loader.mailchimp_client import (
    ClientPool,
    KeyHealth,
    MailchimpClient,
    RetriesExhausted,
    RetryPolicy,
)
from services.loader.settings import LoaderSettings
from shared.credentials import Credential
from shared.events import MemberSynced
from shared.metrics import TRANSACTION_FAILURES
from shared.settings import KafkaSettings, MailchimpSettings
from tests.helpers import running, wait_for
from tests.loader.support import (
    API_KEY,
    Mailchimp,
    command,
    loader_service,
    produce_commands,
    results,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)

FAST: dict[str, Any] = {"backoff_initial_seconds": 0.02, "backoff_max_seconds": 0.1}


@contextlib.asynccontextmanager
async def client_for(mc: Mailchimp, max_attempts: int = 3) -> AsyncIterator[MailchimpClient]:
    pool = ClientPool(MailchimpSettings(api_base=mc.api_base, timeout_seconds=5), LoaderSettings())
    credential = Credential("mc-main", "mailchimp_api_key", {"dc": "us6"}, {"secret": SecretStr(API_KEY)}, "")
    target = target_for(credential, mc.api_base)
    policy = RetryPolicy(max_attempts, 30, 0.02, 0.1)
    try:
        yield MailchimpClient(
            pool.for_base(target.base_url), target, AdaptiveLimiter("mc-main", 9, 2), KeyHealth(), policy
        )
    finally:
        await pool.aclose()


async def test_throttle_answers_are_retried_and_cut_the_local_limit() -> None:
    with served_mailchimp() as mc:
        mc.sim.queue_faults("429", "403", "503", kind="ping")
        async with client_for(mc, max_attempts=5) as client:
            answer = await client.request("ping", "GET", "/ping")
            assert (answer.status, answer.attempts) == (200, 4)
            assert client.limiter.throttles == 3
            assert client.limiter.limit < 9


async def test_a_request_failing_while_mailchimp_answers_others_is_retries_exhausted_not_an_outage() -> None:
    with served_mailchimp() as mc:
        mc.sim.queue_faults("500", "500", "500", kind="tags")
        async with client_for(mc) as client:
            stop = asyncio.Event()

            async def others() -> None:
                while not stop.is_set():
                    await client.request("ping", "GET", "/ping")

            background = asyncio.create_task(others())
            await wait_for(lambda: client.health.last_answer > float("-inf"), message="a first answer")
            with pytest.raises(RetriesExhausted) as raised:
                await client.request(
                    "member_tags", "POST", "/lists/a1b2c3d4e5/members/x/tags", body={"tags": []}
                )
            stop.set()
            await background
    assert (raised.value.outage, raised.value.attempts, raised.value.cause) == (False, 3, "5xx")


async def test_when_nothing_answers_the_exhausted_request_reports_an_outage() -> None:
    with served_mailchimp(error_rate=1.0) as mc:
        async with client_for(mc) as client:
            with pytest.raises(RetriesExhausted) as raised:
                await client.request("ping", "GET", "/ping")
    assert raised.value.outage


async def test_a_mailchimp_outage_holds_the_batch_back_instead_of_failing_its_commands(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    commands = [command(f"O{n}", f"out{n}@example.com") for n in range(20)]
    failures_before = TRANSACTION_FAILURES.labels("loader")._value.get()
    with served_mailchimp(error_rate=1.0) as mc:
        await produce_commands(kafka, commands)
        service = loader_service(kafka, files, mc.api_base, max_attempts=3, **FAST)
        async with running(service):
            await wait_for(
                lambda: TRANSACTION_FAILURES.labels("loader")._value.get() >= failures_before + 2,
                timeout=60,
                message="the batch held back twice",
            )
            assert await results(kafka) == []
            mc.sim.set_faults(error_rate=0.0)
            found = await wait_for_results(kafka, len(commands), timeout=90)
    assert len(found) == len(commands)
    assert all(isinstance(r, MemberSynced) and r.outcome == "created" for r in found)


async def test_timeouts_are_retried(kafka: KafkaSettings, tmp_path: Path) -> None:
    files = write_loader_files(tmp_path)
    commands = [command("T1", "slow@example.com")]
    with served_mailchimp(timeout_seconds=2.0) as mc:
        mc.sim.queue_faults("timeout", kind="member_put")
        await produce_commands(kafka, commands)
        async with running(loader_service(kafka, files, mc.api_base, timeout_seconds=0.5, **FAST)):
            found = await wait_for_results(kafka, 1)
    assert isinstance(found[0], MemberSynced) and found[0].attempts == 2
