"""Start a SYSPRO simulator on a real local port for tests, the demo and benchmarks.

with running_syspro(customers=1000) as syspro:
    httpx.get(f"{syspro.odata_url}/ArCustomer", auth=syspro.odata_auth)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from simulators._server import ServerThread
from simulators.syspro.config import SysproSimConfig
from simulators.syspro.simulator import SysproSimulator

__all__ = ["RunningSyspro", "fresh_state", "running_syspro"]


@dataclass(frozen=True)
class RunningSyspro:
    sim: SysproSimulator
    server: ServerThread

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def odata_url(self) -> str:
        """The full service root, company included, as a client is configured with it."""
        return self.server.url + self.sim.config.odata_path

    @property
    def enet_url(self) -> str:
        return self.server.url + self.sim.config.enet_path

    @property
    def admin_url(self) -> str:
        return self.server.url + "/_admin"

    @property
    def odata_auth(self) -> tuple[str, str]:
        """Credentials of the first configured operator (user = operator code, OData password)."""
        operator, secrets = next(iter(self.sim.config.operators.items()))
        return operator, secrets.odata_password.get_secret_value()


@contextlib.contextmanager
def running_syspro(
    config: SysproSimConfig | None = None,
    customers: int = 0,
    seed: int = 0,
    sim: SysproSimulator | None = None,
) -> Iterator[RunningSyspro]:
    """A simulator serving on ``127.0.0.1:<free port>`` until the block ends."""
    simulator = sim if sim is not None else SysproSimulator(config)
    if customers:
        simulator.generate(customers, seed)
    with ServerThread(simulator.app) as server:
        yield RunningSyspro(simulator, server)


@contextlib.contextmanager
def fresh_state(running: RunningSyspro, customers: int = 0, seed: int = 0) -> Iterator[RunningSyspro]:
    """Reuse one running simulator for many tests: each starts from regenerated data, no faults, no
    sessions and zeroed counters, and whatever the test switched in the config is put back afterwards.

    Starting a server per test costs a few hundred milliseconds; this costs the data generation only.
    """
    sim = running.sim
    saved = sim.config.model_copy(deep=True)
    sim.generate(customers, seed)
    sim.set_faults(**saved.faults.model_dump())
    sim.expire_sessions()
    sim.reset_stats()
    try:
        yield running
    finally:
        for name in type(saved).model_fields:
            setattr(sim.config, name, getattr(saved, name))
        sim.set_faults(**saved.faults.model_dump())
