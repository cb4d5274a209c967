"""The cursor strategy: incremental reads by TimeStamp or a datetime column, with periodic full scans."""

from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import parse_qs

import pytest

from services.poller.app import PollerService, StartupError
from shared.settings import KafkaSettings
from tests.helpers import wait_for
from tests.poller.conftest import PollerFactory, Syspro, changes


async def _started(make_poller: PollerFactory, **source: object) -> PollerService:
    poller = make_poller(strategy="cursor", **source)
    await poller.start()
    return poller


async def test_an_incremental_run_reads_only_the_changed_rows(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(3_000, seed=11)
    poller = await _started(make_poller, cursor_column="TimeStamp", full_scan_every=10)
    try:
        first = await poller.poll_now("edu1")
        assert first.ok and first.full_scan and first.created == 3_000

        for code in ("000010", "001500", "002999"):
            syspro.sim.update(code, Email=f"changed-{code}@example.com")
        syspro.sim.create({"Customer": "NEW001", "Name": "New Customer", "Email": "new@example.com"})
        syspro.sim.reset_stats()
        second = await poller.poll_now("edu1")
        stats = syspro.sim.stats.as_dict()
        assert not second.full_scan
        assert (second.created, second.updated, second.deleted) == (1, 3, 0)
        assert (stats["odata_requests"], stats["rows_served"]) == (1, 4)
        assert second.odata_requests == 1 and second.rows_read == 4
        query = parse_qs(syspro.odata_log()[-1].query)
        assert query["$orderby"] == ["TimeStamp,Customer"] and query["$filter"][0].startswith(
            "TimeStamp gt binary'"
        )

        syspro.sim.reset_stats()
        third = await poller.poll_now("edu1")
        assert (third.rows_read, third.created + third.updated + third.deleted) == (0, 0)
        assert syspro.sim.stats.as_dict()["odata_requests"] == 1
    finally:
        await poller.close()
    counts = Counter((e.run_id, e.change) for e in await changes(kafka))
    assert counts[(second.run_id, "updated")] == 3 and counts[(second.run_id, "created")] == 1


async def test_overlap_rereads_are_diffed_and_emit_nothing(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(500, seed=2)
    poller = await _started(make_poller, cursor_overlap=50, full_scan_every=10)
    try:
        await poller.poll_now("edu1")
        syspro.sim.update("000007", Email="only-this@example.com")
        report = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert not report.full_scan
    assert report.rows_read == 51  # the 50 rowversions of the overlap window, re-read, + the real change
    assert (report.created, report.updated) == (0, 1)


async def test_rows_sharing_a_cursor_value_are_never_skipped_across_pages(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(200, seed=5)
    poller = await _started(make_poller, cursor_column="DateCustAdded", page_size=7, full_scan_every=10)
    try:
        await poller.poll_now("edu1")
        # 40 new customers all get today's DateCustAdded: one cursor value shared across six pages, with
        # codes that sort around quotes, spaces and non-ASCII letters.
        codes = [f"T{n:03d}" for n in range(34)] + ["O'BRIEN", "O''NEIL", "Ä-1", "Z' or 1 eq 1", "A B", "É'É"]
        for code in codes:
            syspro.sim.create({"Customer": code, "Name": f"Shop {code}", "Email": "shop@example.com"})
        report = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert not report.full_scan
    new = [e for e in await changes(kafka) if e.run_id == report.run_id]
    assert sorted(e.customer for e in new) == sorted(codes)
    assert {e.change for e in new} == {"created"}


async def test_a_full_scan_every_n_runs_catches_deletes(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(300, seed=4)
    poller = await _started(make_poller, full_scan_every=3)
    try:
        reports = [await poller.poll_now("edu1")]
        syspro.sim.delete("000123")
        for _ in range(3):
            reports.append(await poller.poll_now("edu1"))
    finally:
        await poller.close()
    assert [r.full_scan for r in reports] == [True, False, False, True]
    assert [r.deleted for r in reports] == [0, 0, 0, 1]
    deleted = [e for e in await changes(kafka) if e.change == "deleted"]
    assert [(e.customer, e.strategy) for e in deleted] == [("000123", "cursor")]


async def test_a_row_updated_behind_a_running_full_scan_is_read_by_the_next_run(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.generate(600, seed=8)
    poller = await _started(make_poller, page_size=100, full_scan_every=10)
    syspro.sim.set_faults(latency_ms=150)
    try:
        scan = asyncio.create_task(poller.poll_now("edu1"))
        await wait_for(
            lambda: sum(r.rows for r in syspro.odata_log()) >= 200, timeout=30, message="two pages"
        )
        syspro.sim.update("000005", Email="changed-while-scanning@example.com")  # already read by the scan
        syspro.sim.update("000590", Email="changed-later@example.com")  # not yet read: newest rowversion
        full = await scan
        syspro.sim.clear_faults()
        follow_up = await poller.poll_now("edu1")
    finally:
        await poller.close()
    assert full.full_scan and full.created == 600
    scanned = {e.customer: e.row["Email"] for e in await changes(kafka) if e.run_id == full.run_id}
    assert scanned["000590"] == "changed-later@example.com"
    assert not follow_up.full_scan and follow_up.updated == 1
    updated = [e for e in await changes(kafka) if e.run_id == follow_up.run_id]
    assert [(e.customer, e.row["Email"]) for e in updated] == [
        ("000005", "changed-while-scanning@example.com")
    ]


async def test_a_server_that_refuses_timestamp_filters_fails_start_up_naming_the_column(
    kafka: KafkaSettings, syspro: Syspro, make_poller: PollerFactory
) -> None:
    syspro.sim.set_switches(timestamp_filter_allowed=False)
    poller = make_poller(strategy="cursor", cursor_column="TimeStamp")
    try:
        with pytest.raises(StartupError, match="TimeStamp") as error:
            await poller.start()
    finally:
        await poller.close()
    assert "snapshot" in str(error.value)
