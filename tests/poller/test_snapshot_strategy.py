"""The snapshot strategy against the SYSPRO simulator over HTTP and the real broker."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs

from services.poller.app import PollerService
from shared.codec import decode_as
from shared.events import CustomerSnapshot, PollRunCompleted
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_SNAPSHOT
from tests.helpers import read_all
from tests.poller.conftest import PollerFactory, Syspro, changes, checkpoints, runs


async def test_12000_customers_give_12000_created_then_nothing_then_one_update_then_one_delete(
    kafka: KafkaSettings, syspro: Syspro, poller: PollerService
) -> None:
    syspro.sim.generate(12_000, seed=7)

    first = await poller.poll_now("edu1")
    assert first.ok and first.full_scan
    assert (first.created, first.updated, first.deleted, first.rows_read) == (12_000, 0, 0, 12_000)
    # Three server pages (5000 + 5000 + 2000) plus the service document and $metadata at start-up.
    pages = [r for r in syspro.odata_log() if r.path.endswith("/ArCustomer")]
    assert [r.rows for r in pages] == [5000, 5000, 2000]
    emitted = await changes(kafka)
    assert len(emitted) == 12_000
    assert Counter(e.change for e in emitted) == {"created": 12_000}
    assert len({e.customer for e in emitted}) == 12_000
    sample = next(e for e in emitted if e.customer == "000001")
    assert sample.row["Customer"] == "000001" and "TimeStamp" not in sample.row
    assert sample.correlation_id == sample.run_id == first.run_id and sample.causation_id is None

    second = await poller.poll_now("edu1")
    assert second.ok and (second.created, second.updated, second.deleted) == (0, 0, 0)
    assert second.rows_read == 12_000
    assert len(await changes(kafka)) == 12_000

    syspro.sim.update("000042", Email="new.address@example.com")
    third = await poller.poll_now("edu1")
    assert (third.created, third.updated, third.deleted) == (0, 1, 0)
    update = [e for e in await changes(kafka) if e.run_id == third.run_id]
    assert [(e.customer, e.change, e.row["Email"]) for e in update] == [
        ("000042", "updated", "new.address@example.com")
    ]

    syspro.sim.delete("000100")
    fourth = await poller.poll_now("edu1")
    assert (fourth.created, fourth.updated, fourth.deleted) == (0, 0, 1)
    deleted = [e for e in await changes(kafka) if e.run_id == fourth.run_id]
    assert [(e.customer, e.change, e.row) for e in deleted] == [("000100", "deleted", {})]

    # The compacted snapshot ends with a tombstone for the deleted customer and the new hash for 000042.
    records = await read_all(kafka, CUSTOMER_SNAPSHOT.name, 20)
    last = {r.key: r.value for r in records}
    assert last[b"edu1:000100"] is None
    assert decode_as(last[b"edu1:000042"], CustomerSnapshot).row_hash == update[0].row_hash

    completed = [r for r in await runs(kafka) if isinstance(r, PollRunCompleted)]
    assert [(r.created, r.updated, r.deleted) for r in completed] == [
        (12_000, 0, 0),
        (0, 0, 0),
        (0, 1, 0),
        (0, 0, 1),
    ]
    assert [c.last_run_id for c in await checkpoints(kafka)] == [
        first.run_id,
        second.run_id,
        third.run_id,
        fourth.run_id,
    ]


async def test_without_next_links_the_scan_pages_with_skip_and_stops_on_a_short_page(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.set_switches(emit_next_link=False)
    syspro.sim.generate(1_050, seed=3)
    poller = make_poller(page_size=500)
    await poller.start()
    try:
        report = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert report.ok and report.created == 1_050
    pages = [r for r in syspro.odata_log() if r.path.endswith("/ArCustomer")]
    queries = [parse_qs(r.query) for r in pages]
    assert [(q["$skip"], q["$top"], q["$orderby"]) for q in queries] == [
        (["0"], ["500"], ["Customer"]),
        (["500"], ["500"], ["Customer"]),
        (["1000"], ["500"], ["Customer"]),
    ]
    assert [r.rows for r in pages] == [500, 500, 50]


async def test_server_page_cap_below_page_size_is_followed_through_next_links(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.set_switches(page_cap=300)
    syspro.sim.generate(1_000, seed=3)
    poller = make_poller(page_size=500)
    await poller.start()
    try:
        report = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert report.ok and report.created == 1_000 and report.deleted == 0
    assert len({e.customer for e in await changes(kafka)}) == 1_000


async def test_only_the_columns_the_mapping_needs_are_selected_and_hashed(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(20, seed=3)
    poller = make_poller(extra_columns=["UserField1", "Currency"])
    await poller.start()
    try:
        await poller.poll_now("edu1")
        # A column nobody reads changes: no event. A column the mapping reads changes: one event.
        syspro.sim.update("000003", ShipToAddr5="Elsewhere")
        quiet = await poller.poll_now("edu1")
        syspro.sim.update("000003", UserField1="VIP")
        loud = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert (quiet.updated, loud.updated) == (0, 1)
    (event,) = [e for e in await changes(kafka) if e.run_id == loud.run_id]
    assert event.row["UserField1"] == "VIP" and "ShipToAddr5" not in event.row
    assert event.row["Currency"] == "$"  # char(3) "$  " arrives trimmed
    select = parse_qs([r for r in syspro.odata_log() if r.path.endswith("/ArCustomer")][-1].query)["$select"][
        0
    ]
    assert select.split(",")[0] == "Customer" and "TimeStamp" in select and "Email" in select
