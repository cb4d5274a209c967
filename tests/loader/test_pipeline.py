"""Two consumed batches in flight at once keep each customer's commands in order."""

from __future__ import annotations

from pathlib import Path

from shared.events import MemberSynced
from shared.metrics import TRANSACTION_FAILURES
from shared.settings import KafkaSettings
from tests.helpers import running, wait_for
from tests.loader.support import (
    LIST_ID,
    command,
    loader_service,
    produce_commands,
    served_mailchimp,
    wait_for_results,
    write_loader_files,
)

CUSTOMERS = 150
VERSIONS = 4


async def test_a_customers_commands_apply_in_order_across_overlapping_batches(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    # Version v of every customer, then version v+1...: a fetch takes whole runs of a few partitions,
    # so a customer's commands span batches that run concurrently. A fetch of 150 records holds at least
    # 150 / VERSIONS > 37 distinct customers, so a batch-subscribe threshold of 10 always sends the new
    # ones through batch subscribe (the default, 50, depends on how the partitions happen to fill).
    commands = [
        command(f"S{n}", f"s{n}@example.com", merge_fields={"FNAME": f"v{v}"}, tags_add=[f"t{v}"])
        for v in range(VERSIONS)
        for n in range(CUSTOMERS)
    ]
    with served_mailchimp(latency_ms={"member_put": 10, "batch_members": 300}) as mc:
        await produce_commands(kafka, commands)
        service = loader_service(
            kafka, files, mc.api_base, max_batch=CUSTOMERS, pipeline_depth=2, bulk_min_members=10
        )
        async with running(service):
            found = await wait_for_results(kafka, len(commands), timeout=120)
        members = {m["email_address"]: m for m in mc.sim.members(LIST_ID)}
        assert mc.throttled() == 0
    assert all(isinstance(r, MemberSynced) for r in found)
    for n in range(CUSTOMERS):
        member = members[f"s{n}@example.com"]
        assert member["merge_fields"]["FNAME"] == f"v{VERSIONS - 1}"
        assert {t["name"] for t in member["tags"]} == {f"t{v}" for v in range(VERSIONS)}
    order = {c.event_id: (c.customer, int(c.merge_fields["FNAME"][1:])) for c in commands}
    seen: dict[str, int] = {}
    for result in found:
        customer, version = order[result.causation_id]  # type: ignore[index]
        assert version == seen.get(customer, -1) + 1, (customer, version)
        seen[customer] = version
    assert any(r.via == "batch" for r in found if isinstance(r, MemberSynced))


async def test_an_outage_in_the_middle_of_a_stream_loses_and_reorders_nothing(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    files = write_loader_files(tmp_path)
    commands = [
        command(f"U{n}", f"u{n}@example.com", merge_fields={"FNAME": f"v{v}"})
        for v in range(2)
        for n in range(200)
    ]
    abandoned_before = TRANSACTION_FAILURES.labels("loader")._value.get()
    with served_mailchimp(latency_ms={"member_put": 5, "default": 2}) as mc:
        await produce_commands(kafka, commands)
        service = loader_service(
            kafka,
            files,
            mc.api_base,
            max_batch=40,
            bulk_min_members=10**9,
            max_attempts=4,
            backoff_initial_seconds=0.01,
            backoff_max_seconds=0.05,
        )
        async with running(service):
            await wait_for(
                lambda: service.processor.batches >= 2, timeout=60, message="two batches committed"
            )
            mc.sim.set_faults(error_rate=1.0)
            await wait_for(
                lambda: TRANSACTION_FAILURES.labels("loader")._value.get() > abandoned_before,
                timeout=60,
                message="batches abandoned during the outage",
            )
            mc.sim.set_faults(error_rate=0.0)
            found = await wait_for_results(kafka, len(commands), timeout=120)
        members = {m["email_address"]: m for m in mc.sim.members(LIST_ID)}
    assert sorted(str(r.causation_id) for r in found) == sorted(str(c.event_id) for c in commands)
    assert all(isinstance(r, MemberSynced) for r in found)
    assert all(members[f"u{n}@example.com"]["merge_fields"]["FNAME"] == "v1" for n in range(200))
