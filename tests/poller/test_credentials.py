"""Credentials: expiry and rotation mid-run recover without a gap; wrong ones fail and advance nothing."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from shared.credentials import CredentialStore
from shared.events import PollRunFailed
from shared.settings import KafkaSettings
from tests.helpers import wait_for
from tests.poller.conftest import ODATA_PASSWORD, PollerFactory, Syspro, changes, checkpoints, runs


def _all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


async def test_a_session_refused_every_few_requests_recovers_without_a_gap(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(1_200, seed=6)
    syspro.sim.set_switches(odata_auth_expire_every=3)
    poller = make_poller(page_size=200)
    await poller.start()
    try:
        report = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert report.ok and report.created == 1_200
    assert syspro.sim.stats.as_dict()["auth_failures"] >= 2
    assert Counter(e.customer for e in await changes(kafka)) == Counter(f"{n:06d}" for n in range(1, 1_201))


async def test_a_password_rotated_mid_run_is_read_again_from_the_store(
    kafka: KafkaSettings, syspro: Syspro, store: CredentialStore, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(1_000, seed=6)
    poller = make_poller(page_size=200)
    await poller.start()
    syspro.sim.set_faults(latency_ms=100)
    try:
        run = asyncio.create_task(poller.poll_now("edu1"))
        await wait_for(lambda: sum(r.rows for r in syspro.odata_log()) >= 200, timeout=30, message="a page")
        # The operator's OData password is rotated: first in the store, then in SYSPRO.
        store.set("syspro-edu1", "syspro", {"secret": "rotated-Q7"}, {"operator": "ADMIN"})
        syspro.sim.set_operator("ADMIN", odata_password="rotated-Q7")
        report = await run
    finally:
        await poller.close()
    assert report.ok and report.created == 1_000
    assert syspro.sim.stats.as_dict()["auth_failures"] == 1
    assert len({e.customer for e in await changes(kafka)}) == 1_000


async def test_wrong_credentials_fail_clearly_without_advancing_the_checkpoint(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    syspro.sim.generate(50, seed=6)
    poller = make_poller()
    await poller.start()
    try:
        good = await poller.poll_now("edu1")
        syspro.sim.set_operator("ADMIN", odata_password="changed-in-syspro-only")
        syspro.sim.update("000001", Email="unseen@example.com")
        bad = await poller.poll_now("edu1")
        status = poller.readiness()[1]["connections"]["edu1"]
    finally:
        await poller.close()
    assert good.ok and not bad.ok
    assert bad.reason == "auth_refused"
    assert "ADMIN" in (bad.detail or "") and ODATA_PASSWORD not in (bad.detail or "")
    assert status["last_error"]["reason"] == "auth_refused"
    assert syspro.sim.stats.as_dict()["auth_failures"] == 2  # the request and its one retry
    failed = [r for r in await runs(kafka) if isinstance(r, PollRunFailed)]
    assert [(f.run_id, f.reason) for f in failed] == [(bad.run_id, "auth_refused")]
    assert [c.last_run_id for c in await checkpoints(kafka)] == [good.run_id]
    assert [e.customer for e in await changes(kafka) if e.run_id == bad.run_id] == []
    assert ODATA_PASSWORD not in _all_log_text(caplog)


async def test_a_poller_started_with_a_refused_credential_reports_each_failed_attempt(
    kafka: KafkaSettings, syspro: Syspro, store: CredentialStore, make_poller: PollerFactory
) -> None:
    store.set("syspro-edu1", "syspro", {"secret": "wrong"}, {"operator": "ADMIN"})
    poller = make_poller()
    await poller.start()  # not a configuration error: the store may be fixed while the poller runs
    try:
        first = await poller.poll_now("edu1")
        store.set("syspro-edu1", "syspro", {"secret": ODATA_PASSWORD}, {"operator": "ADMIN"})
        second = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert (first.ok, first.reason) == (False, "auth_refused")
    assert second.ok
    assert [c.last_run_id for c in await checkpoints(kafka)] == [second.run_id]


async def test_the_enet_logon_check_logs_on_reads_the_profile_and_always_logs_off(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    poller = make_poller(enet_url=syspro.enet_url)
    await poller.start()
    try:
        enet = poller.readiness()[1]["connections"]["edu1"]["enet"]
    finally:
        await poller.close()
    assert enet["ok"] and "EDU1 Outdoor Distribution" in enet["detail"]
    stats = syspro.sim.stats.as_dict()
    assert (stats["logons"], stats["logoffs"]) == (1, 1)
    assert syspro.sim.enet.active_sessions() == []


async def test_a_refused_enet_logon_is_reported_in_readiness_without_the_password(
    kafka: KafkaSettings,
    syspro: Syspro,
    store: CredentialStore,
    make_poller: PollerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store.set(
        "syspro-edu1",
        "syspro",
        {"secret": ODATA_PASSWORD, "enet_password": "not-it-K4"},
        {"operator": "ADMIN"},
    )
    poller = make_poller(enet_url=syspro.enet_url)
    await poller.start()
    try:
        ready, details = poller.readiness()
    finally:
        await poller.close()
    enet = details["connections"]["edu1"]["enet"]
    assert ready, "the OData side works: an e.net problem is reported, not fatal"
    assert not enet["ok"] and "Invalid operator password" in enet["detail"]
    assert "not-it-K4" not in enet["detail"] and "not-it-K4" not in _all_log_text(caplog)
    assert syspro.sim.stats.as_dict()["logons"] == 0
