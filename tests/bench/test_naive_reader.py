"""The naive sync reads every customer, whatever the server's page cap (against the SYSPRO simulator)."""

from __future__ import annotations

import httpx
import pytest

from bench.naive_sync import NaiveResult, _read_all
from simulators._server import ServerThread
from simulators.syspro.config import SysproSimConfig
from simulators.syspro.simulator import SysproSimulator
from tests.poller.conftest import ODATA_PASSWORD


@pytest.mark.parametrize(("page_cap", "page_size"), [(5000, 100), (70, 100), (100, 100)])
async def test_every_customer_is_read(page_cap: int, page_size: int) -> None:
    sim = SysproSimulator(SysproSimConfig())
    sim.generate(250, seed=5)
    sim.set_switches(page_cap=page_cap)
    with ServerThread(sim.app) as server:
        result = NaiveResult()
        async with httpx.AsyncClient() as client:
            rows = await _read_all(
                client,
                server.url + sim.config.odata_path,
                httpx.BasicAuth("ADMIN", ODATA_PASSWORD),
                result,
                page_size,
            )
    assert sorted(r["Customer"] for r in rows) == sorted({r["Customer"] for r in rows})
    assert len(rows) == 250
    assert result.odata_requests >= 3
