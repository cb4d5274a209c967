"""Fixtures for the poller: a SYSPRO simulator on a real port, an encrypted credential store, a
connections file, and pollers wired to the test broker's namespace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.poller.app import PollerService
from services.poller.settings import PollerSettings
from shared.codec import decode_as
from shared.connections import ConnectionsConfig
from shared.credentials import CredentialStore, generate_key
from shared.events import CustomerChanged, PollCheckpoint, PollRunCompleted, PollRunFailed
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_CHANGED, POLL_CHECKPOINT, POLL_RUN
from simulators._server import ServerThread
from simulators.syspro.config import SysproSimConfig
from simulators.syspro.simulator import SysproSimulator
from tests.helpers import read_all

ODATA_PASSWORD = "odata-secret"
ENET_PASSWORD = "admin"


class Syspro:
    """A running simulator: the object (for data and switches) and its base URL."""

    def __init__(self, sim: SysproSimulator, server: ServerThread) -> None:
        self.sim = sim
        self.server = server

    @property
    def odata_url(self) -> str:
        return self.server.url + self.sim.config.odata_path

    @property
    def enet_url(self) -> str:
        return self.server.url + self.sim.config.enet_path

    def odata_log(self) -> list[Any]:
        """Requests the simulator served under the OData root (most recent last)."""
        return [r for r in self.sim.stats.log if r.path.startswith(self.sim.config.odata_path)]


@pytest.fixture
def syspro() -> Iterator[Syspro]:
    sim = SysproSimulator(SysproSimConfig())
    with ServerThread(sim.app) as server:
        yield Syspro(sim, server)


@pytest.fixture
def master_key() -> str:
    return generate_key()


@pytest.fixture
def store(tmp_path: Path, master_key: str) -> CredentialStore:
    store = CredentialStore(tmp_path / "credentials.json", [master_key])
    store.set(
        "syspro-edu1",
        "syspro",
        {"secret": ODATA_PASSWORD, "enet_password": ENET_PASSWORD},
        {"operator": "ADMIN"},
    )
    return store


def connection_dict(syspro: Syspro, connection_id: str = "edu1", **source: Any) -> dict[str, Any]:
    return {
        "id": connection_id,
        "syspro": {
            "odata_url": syspro.odata_url,
            "operator": "ADMIN",
            "credential": "syspro-edu1",
            "interval_seconds": 3600,
            "max_attempts": 4,
            "timeout_seconds": 5,
            **source,
        },
        "audiences": [{"id": "main", "list_id": "a1b2c3d4e5", "credential": "mc"}],
    }


def write_connections(path: Path, *connections: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"connections": list(connections)}), encoding="utf-8")
    return path


PollerFactory = Callable[..., PollerService]


@pytest.fixture
def make_poller(kafka: KafkaSettings, store: CredentialStore, syspro: Syspro) -> PollerFactory:
    """A poller for one connection on the simulator, driven by ``poll_now`` (no run at start)."""

    def factory(
        *connections: dict[str, Any],
        instance_id: str | None = None,
        run_on_start: bool = False,
        **source: Any,
    ) -> PollerService:
        config = ConnectionsConfig.model_validate(
            {"connections": list(connections) or [connection_dict(syspro, **source)]}
        )
        settings = PollerSettings(
            run_on_start=run_on_start, retry_initial_seconds=0.01, retry_max_seconds=0.05
        )
        return PollerService(kafka, config, store, settings, instance_id or f"p-{uuid.uuid4().hex[:8]}")

    return factory


@pytest.fixture
async def poller(make_poller: PollerFactory) -> AsyncIterator[PollerService]:
    service = make_poller()
    await service.start()
    try:
        yield service
    finally:
        await service.close()


async def changes(kafka: KafkaSettings) -> list[CustomerChanged]:
    return [decode_as(r.value, CustomerChanged) for r in await read_all(kafka, CUSTOMER_CHANGED.name, 20)]


async def runs(kafka: KafkaSettings) -> list[PollRunCompleted | PollRunFailed]:
    out: list[PollRunCompleted | PollRunFailed] = []
    for record in await read_all(kafka, POLL_RUN.name, 10):
        event = decode_as(record.value, PollRunCompleted, PollRunFailed)
        assert isinstance(event, PollRunCompleted | PollRunFailed)
        out.append(event)
    return out


async def checkpoints(kafka: KafkaSettings) -> list[PollCheckpoint]:
    return [decode_as(r.value, PollCheckpoint) for r in await read_all(kafka, POLL_CHECKPOINT.name, 10)]
