"""State is in Kafka: a poller restarted elsewhere, or killed mid-run, neither re-emits nor loses anything."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx

from shared.credentials import CredentialStore
from shared.events import PollRunCompleted
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_CHANGED
from simulators._server import free_port
from tests.helpers import ServiceProcess, read_all, wait_for
from tests.poller.conftest import PollerFactory, Syspro, changes, connection_dict, runs, write_connections


async def test_a_poller_restarted_on_another_host_resumes_without_re_emitting(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(2_000, seed=9)
    first_host = make_poller(instance_id="host-a")
    await first_host.start()
    try:
        initial = await first_host.poll_now("edu1")
    finally:
        await first_host.close()

    syspro.sim.update("000777", Name="Renamed While Nobody Polled")
    second_host = make_poller(instance_id="host-b")
    await second_host.start()
    try:
        status = second_host.readiness()[1]["connections"]["edu1"]
        resumed = await second_host.poll_now("edu1")
    finally:
        await second_host.close()
    assert initial.created == 2_000
    assert status["known_customers"] == 2_000
    assert (resumed.created, resumed.updated, resumed.deleted) == (0, 1, 0)
    assert len(await changes(kafka)) == 2_001


async def test_a_cursor_poller_resumes_from_its_checkpointed_cursor(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(1_000, seed=9)
    first_host = make_poller(instance_id="host-a", strategy="cursor", full_scan_every=4)
    await first_host.start()
    try:
        await first_host.poll_now("edu1")
    finally:
        await first_host.close()
    syspro.sim.update("000321", Email="after-restart@example.com")
    second_host = make_poller(instance_id="host-b", strategy="cursor", full_scan_every=4)
    await second_host.start()
    try:
        syspro.sim.reset_stats()
        resumed = await second_host.poll_now("edu1")
    finally:
        await second_host.close()
    assert not resumed.full_scan
    assert (resumed.rows_read, resumed.updated, syspro.sim.stats.as_dict()["odata_requests"]) == (1, 1, 1)


async def test_a_poller_killed_mid_run_or_between_runs_loses_nothing_and_duplicates_nothing(
    kafka: KafkaSettings,
    syspro: Syspro,
    store: CredentialStore,
    master_key: str,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    total = 3_000
    syspro.sim.generate(total, seed=12)
    syspro.sim.set_faults(latency_ms=150, applies_to="odata")
    connections = write_connections(tmp_path / "connections.yaml", connection_dict(syspro, page_size=200))
    env = {
        **service_env,
        "MLC_CONNECTIONS_FILE": str(connections),
        "MLC_CREDENTIALS_FILE": str(store.path),
        "MLC_MASTER_KEY": master_key,
        "MLC_INSTANCE_ID": "poller-0",
        "MLC_POLLER_RUN_ON_START": "true",
    }

    async def committed() -> int:
        return len(await read_all(kafka, CUSTOMER_CHANGED.name, 10))

    victim = ServiceProcess("poller", env, free_port(), tmp_path / "victim.log").start()
    try:
        await victim.wait_ready()
        await wait_for(
            lambda: sum(r.rows for r in syspro.odata_log()) >= 800, timeout=60, message="4 pages read"
        )
    finally:
        victim.kill()
    before_restart = await committed()
    assert 0 < before_restart < total, f"the kill must land mid-run ({before_restart} of {total} committed)"

    syspro.sim.clear_faults()
    survivor = ServiceProcess("poller", env, free_port(), tmp_path / "survivor.log").start()
    try:
        await survivor.wait_ready()

        async def completed() -> list[PollRunCompleted]:
            return [r for r in await runs(kafka) if isinstance(r, PollRunCompleted)]

        (run,) = await wait_for(completed, timeout=90, message="the restarted poller's run to complete")
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{survivor.url}/metrics")).text
    finally:
        survivor.kill()  # between runs this time

    third = ServiceProcess(
        "poller", {**env, "MLC_POLLER_RUN_ON_START": "false"}, free_port(), tmp_path / "3.log"
    )
    third.start()
    try:
        await third.wait_ready()
        async with httpx.AsyncClient(timeout=60) as client:
            again = (await client.post(f"{third.url}/poll/edu1")).json()
    finally:
        assert third.terminate() == 0, third.logs()[-3000:]
    assert again["ok"] and (again["created"], again["updated"], again["deleted"]) == (0, 0, 0)

    events = await changes(kafka)
    per_customer = Counter(e.customer for e in events)
    assert len(per_customer) == total, "a customer is missing"
    assert set(per_customer.values()) == {1}, "a customer was emitted twice"
    assert {e.change for e in events} == {"created"}
    assert run.created == total - before_restart
    assert (
        f'mlc_poller_events_emitted_total{{change="created",connection="edu1"}} {float(run.created)}'
        in metrics
    )
