"""Transient SYSPRO trouble is retried with backoff; a run that cannot finish advances nothing."""

from __future__ import annotations

from collections import Counter

import pytest

from services.poller.errors import ServerError, Unreachable
from services.poller.paging import scan_by_key
from services.poller.syspro_client import ODataClient, RetryPolicy
from shared.events import PollRunCompleted, PollRunFailed
from shared.settings import KafkaSettings
from tests.poller.conftest import ODATA_PASSWORD, PollerFactory, Syspro, changes, checkpoints, runs


def _client(syspro: Syspro, attempts: int = 8, timeout: float = 5.0) -> ODataClient:
    from pydantic import SecretStr

    return ODataClient(
        syspro.odata_url,
        "ArCustomer",
        lambda: ("ADMIN", SecretStr(ODATA_PASSWORD)),
        connection_id="faults",
        timeout=timeout,
        retry=RetryPolicy(attempts, 0.01, 0.05),
    )


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 0.4, "error_statuses": [500, 503, 429], "seed": 3},
        {"malformed_rate": 0.4, "seed": 5},
        {"timeout_rate": 0.3, "timeout_seconds": 2.0, "timeout_response": "drop", "seed": 2},
        {"timeout_rate": 0.3, "timeout_seconds": 0.05, "timeout_response": "504", "seed": 9},
    ],
    ids=["5xx-and-429", "truncated-json", "hung-then-dropped", "gateway-timeout"],
)
async def test_every_row_arrives_exactly_once_through_transient_faults(
    syspro: Syspro, faults: dict[str, object]
) -> None:
    syspro.sim.generate(700, seed=1)
    syspro.sim.set_faults(**faults)
    client = _client(syspro, timeout=0.5)
    try:
        codes = [
            row["Customer"] async for rows in scan_by_key(client, ["Customer", "Email"], 100) for row in rows
        ]
    finally:
        await client.aclose()
    assert Counter(codes) == Counter(f"{n:06d}" for n in range(1, 701))
    injected = sum(syspro.sim.stats.as_dict()["faults"].values())
    assert injected > 0, "the simulator injected no fault: the test proved nothing"
    assert client.requests > 7


async def test_a_server_that_keeps_failing_raises_after_max_attempts(syspro: Syspro) -> None:
    syspro.sim.generate(10, seed=1)
    syspro.sim.set_faults(error_rate=1.0, error_statuses=[503])
    client = _client(syspro, attempts=3)
    try:
        with pytest.raises(ServerError, match=r"HTTP 503 .* after 3 attempt"):
            await client.query([("$top", "5")])
    finally:
        await client.aclose()
    assert syspro.sim.stats.as_dict()["faults"] == {"error_503": 3}


async def test_an_unreachable_server_raises_unreachable() -> None:
    from pydantic import SecretStr

    from simulators._server import free_port

    client = ODataClient(
        f"http://127.0.0.1:{free_port()}/SYSPRO8Odata/SYSPROOData/EDU1",
        "ArCustomer",
        lambda: ("ADMIN", SecretStr("x")),
        connection_id="faults",
        retry=RetryPolicy(2, 0.01, 0.02),
    )
    try:
        with pytest.raises(Unreachable, match="connection failed"):
            await client.query([("$top", "1")])
    finally:
        await client.aclose()


async def test_a_run_that_cannot_finish_publishes_poll_run_failed_and_keeps_the_checkpoint(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(1_200, seed=1)
    poller = make_poller(page_size=500, max_attempts=2)
    await poller.start()
    try:
        good = await poller.poll_now("edu1")
        syspro.sim.update("000001", Email="changed@example.com")
        syspro.sim.update("001100", Email="changed@example.com")
        syspro.sim.delete("000700")
        # Every request after the first page fails: the run dies after committing page one.
        syspro.sim.reset_stats()
        original = syspro.sim.odata.handle

        async def first_page_only(request, subpath):  # type: ignore[no-untyped-def]
            if syspro.sim.stats.odata_requests >= 1:
                syspro.sim.set_faults(error_rate=1.0, error_statuses=[502])
            return await original(request, subpath)

        syspro.sim.odata.handle = first_page_only  # type: ignore[method-assign]
        bad = await poller.poll_now("edu1")
        syspro.sim.odata.handle = original  # type: ignore[method-assign]
        syspro.sim.clear_faults()
        readiness = poller.readiness()[1]["connections"]["edu1"]
        recovered = await poller.poll_now("edu1")
    finally:
        await poller.close()

    assert good.ok and not bad.ok and recovered.ok
    assert bad.reason == "server_error" and "502" in (bad.detail or "")
    assert readiness["last_error"]["reason"] == "server_error"
    # Page one's change was committed by the failed run; the rest (and the delete) only by the next.
    assert (bad.updated, bad.deleted) == (1, 0)
    assert (recovered.updated, recovered.deleted) == (1, 1)
    emitted = [e for e in await changes(kafka) if e.change != "created"]
    assert sorted((e.customer, e.change) for e in emitted) == [
        ("000001", "updated"),
        ("000700", "deleted"),
        ("001100", "updated"),
    ]
    history = await runs(kafka)
    assert [type(r) for r in history] == [PollRunCompleted, PollRunFailed, PollRunCompleted]
    assert [c.last_run_id for c in await checkpoints(kafka)] == [good.run_id, recovered.run_id]
