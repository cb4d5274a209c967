"""Customer codes with quotes, URL metacharacters or non-ASCII letters cannot break or widen a $filter."""

from __future__ import annotations

from pydantic import SecretStr

from services.poller.paging import fetch_by_keys
from services.poller.syspro_client import ODataClient
from shared.settings import KafkaSettings
from tests.poller.conftest import ODATA_PASSWORD, PollerFactory, Syspro, changes

NASTY = [
    "O'BRIEN",
    "' or 'a' eq 'a",
    "x') or (1 eq 1",
    "A&$top=1",
    "50%25",
    "A+B",
    "#1",
    "ÄÖÜ-ß",
    "É'É",
    "A B",
    "''",
]


def _seed(syspro: Syspro) -> None:
    syspro.sim.generate(100, seed=1)
    for code in NASTY:
        syspro.sim.create({"Customer": code, "Name": f"Shop {code}", "Email": "shop@example.com"})


async def test_looking_customers_up_by_code_returns_exactly_those_customers(syspro: Syspro) -> None:
    _seed(syspro)
    client = ODataClient(
        syspro.odata_url, "ArCustomer", lambda: ("ADMIN", SecretStr(ODATA_PASSWORD)), connection_id="inj"
    )
    try:
        found = [r["Customer"] async for rows in fetch_by_keys(client, ["Customer"], NASTY) for r in rows]
        nothing = [
            r["Customer"]
            async for rows in fetch_by_keys(client, ["Customer"], ["zz' or Customer ne 'zz", "000001' or '1"])
            for r in rows
        ]
    finally:
        await client.aclose()
    assert sorted(found) == sorted(NASTY)
    assert nothing == []


async def test_deleting_customers_with_injection_shaped_codes_deletes_exactly_them(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    _seed(syspro)
    poller = make_poller()
    await poller.start()
    try:
        first = await poller.poll_now("edu1")
        # If a code could widen the delete check's filter, the lookup would "find" the deleted customer
        # (or every customer) and no delete would be reported.
        syspro.sim.delete("' or 'a' eq 'a")
        syspro.sim.delete("x') or (1 eq 1")
        syspro.sim.delete("ÄÖÜ-ß")
        second = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert first.created == 100 + len(NASTY)
    assert (second.created, second.updated, second.deleted) == (0, 0, 3)
    deleted = sorted(e.customer for e in await changes(kafka) if e.change == "deleted")
    assert deleted == sorted(["' or 'a' eq 'a", "x') or (1 eq 1", "ÄÖÜ-ß"])
    created = {e.customer for e in await changes(kafka) if e.change == "created"}
    assert set(NASTY) <= created
