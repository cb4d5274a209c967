"""The poller as a service: schedules, several connections, start-up checks, HTTP trigger, readiness."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from services.poller.app import StartupError
from shared.credentials import CredentialStore
from shared.events import PollRunCompleted
from shared.settings import KafkaSettings
from simulators._server import free_port
from tests.helpers import ServiceProcess, running, wait_for
from tests.poller.conftest import PollerFactory, Syspro, changes, connection_dict, runs, write_connections

METRICS = [
    "mlc_poller_rows_read_total",
    "mlc_poller_events_emitted_total",
    "mlc_poller_odata_requests_total",
    "mlc_poller_run_seconds",
    "mlc_poller_runs_total",
    "mlc_poller_last_success_timestamp_seconds",
    "mlc_poller_errors_total",
    "mlc_poller_auth_refusals_total",
    "mlc_poller_known_customers",
]


async def test_several_connections_are_polled_side_by_side_on_their_own_schedules(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(150, seed=2)
    east = connection_dict(syspro, "east", interval_seconds=0.2)
    west = connection_dict(syspro, "west", interval_seconds=0.35, strategy="cursor", full_scan_every=2)
    service = make_poller(east, west, run_on_start=True)

    async def completed_runs() -> Counter[str] | None:
        done = Counter(r.connection_id for r in await runs(kafka) if isinstance(r, PollRunCompleted))
        return done if done["east"] >= 4 and done["west"] >= 3 else None

    async with running(service):
        await wait_for(completed_runs, timeout=60, message="several runs of both connections")
        ready, details = service.readiness()
    assert ready
    assert details["connections"]["east"]["last_run"]["ok"]
    assert details["connections"]["west"]["cursor"] is not None
    per_connection = Counter((e.connection_id, e.change) for e in await changes(kafka))
    assert per_connection == {("east", "created"): 150, ("west", "created"): 150}


async def test_a_column_missing_from_metadata_is_a_start_up_error_naming_it(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    poller = make_poller(extra_columns=["Email", "LoyaltyTier"])
    try:
        with pytest.raises(
            StartupError, match=r"connection edu1: column\(s\) LoyaltyTier not found in ArCustomer"
        ):
            await poller.start()
    finally:
        await poller.close()


async def test_the_http_endpoint_runs_a_poll_now_and_readiness_reports_each_connection(
    kafka: KafkaSettings,
    syspro: Syspro,
    store: CredentialStore,
    master_key: str,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    syspro.sim.generate(40, seed=2)
    connections = write_connections(tmp_path / "connections.yaml", connection_dict(syspro))
    env = {
        **service_env,
        "MLC_CONNECTIONS_FILE": str(connections),
        "MLC_CREDENTIALS_FILE": str(store.path),
        "MLC_MASTER_KEY": master_key,
        "MLC_INSTANCE_ID": "poller-http",
        "MLC_POLLER_RUN_ON_START": "false",
    }
    process = ServiceProcess("poller", env, free_port(), tmp_path / "poller.log").start()
    try:
        ready = await process.wait_ready()
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
            triggered = await client.post("/poll/edu1")
            unknown = await client.post("/poll/nope")
            after = (await client.get("/readyz")).json()
            metrics = (await client.get("/metrics")).text
    finally:
        assert process.terminate() == 0, process.logs()[-3000:]
    assert ready["state_loaded"] and ready["connections"]["edu1"]["last_run"] is None
    assert triggered.status_code == 200 and triggered.json()["created"] == 40
    assert unknown.status_code == 404
    assert after["connections"]["edu1"]["last_run"]["run_id"] == triggered.json()["run_id"]
    assert after["connections"]["edu1"]["known_customers"] == 40
    for name in METRICS:
        assert f"# TYPE {name} " in metrics, name
    assert "odata-secret" not in process.logs()
