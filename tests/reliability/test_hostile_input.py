"""Hostile and dirty input, end to end: odd emails, characters and codes typed into SYSPRO, a customer
deleted and re-created, oversized events, and malformed or wrong-version records written straight onto
every topic. Each case must end with a member or a clear reason in the audit, no service may stop, and
a normal change made afterwards must still flow through.

The poller runs the cursor strategy with five-row pages here, so page boundaries fall on the codes
with quotes, slashes and spaces and the key-set filters carry them (the snapshot strategy is what the
other reliability tests run).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from services.mapper.email_identity import EmailIdentity, read_email
from shared.events import customer_key
from shared.kafka import make_producer
from shared.settings import KafkaSettings
from shared.topics import (
    CUSTOMER_CHANGED,
    CUSTOMER_SNAPSHOT,
    DEAD_LETTER,
    EMAIL_OWNERSHIP,
    MEMBER_STATE,
    POLL_CHECKPOINT,
)
from simulators.expectations import compare, stack_audience
from simulators.stack import StackOptions
from tests.helpers import produce
from tests.reliability.corpus import CUSTOMERS, DELETED, RawRecord, oversized_changes, raw_records
from tests.reliability.invariants import audit_problems, delivery, leaks, observed_departures
from tests.reliability.pipeline import Pipeline, eventually, running_pipeline
from tests.reliability.scale import record_figures

#: Which service consumes each topic as a stream (and so must dead-letter what it cannot read).
STREAM_CONSUMER = {
    "syspro.customer.changed.v1": "mapper",
    "mailchimp.member.upsert.v1": "loader",
    "mailchimp.member.result.v1": "mapper",
}
AUDITED_ONLY = ("syspro.poll.run.v1", "mlc.customer.rejected.v1", "mlc.deadletter.v1")


async def _write_raw(
    kafka: KafkaSettings, records: Sequence[RawRecord]
) -> dict[tuple[str, int, int], RawRecord]:
    """Produce each record; returns them by (topic, partition, offset)."""
    producer = make_producer(kafka, "hostile-writer")
    await producer.start()
    placed: dict[tuple[str, int, int], RawRecord] = {}
    try:
        for rec in records:
            meta = await producer.send_and_wait(kafka.topic(rec.topic), rec.value, key=rec.key)
            placed[(rec.topic, meta.partition, meta.offset)] = rec
    finally:
        await producer.stop()
    return placed


async def _states(api: httpx.AsyncClient, code: str) -> list[dict[str, Any]]:
    response = await api.get("/status", params={"customer": code})
    response.raise_for_status()
    return list(response.json()["items"])


def _member_of(pipeline: Pipeline, code: str) -> dict[str, Any] | None:
    row = pipeline.stack.syspro.get(code)
    if row is None:
        return None
    identity = read_email(row, stack_audience(pipeline.stack).email)
    if not isinstance(identity, EmailIdentity):
        return None
    return pipeline.stack.mailchimp.member(pipeline.list_id, identity.address)


def _tags(member: dict[str, Any] | None) -> set[str]:
    return {t["name"] for t in (member or {}).get("tags", [])}


async def _restart_all(pipeline: Pipeline) -> None:
    """SIGTERM every service (each must exit 0; the poller is already stopped) and start it again, so
    each reads its state topics anew. The mapper goes before the poller can republish anyone."""
    for service in ("mapper", "loader", "audit", "poller"):
        code = pipeline.stop(service)
        assert code == 0, f"{service} exited with {code}:\n{pipeline.process(service).logs()[-3000:]}"
        await pipeline.start(service).wait_ready(timeout=180)


@pytest.mark.timeout(900)
async def test_hostile_and_dirty_input_gets_a_clear_reason_and_stops_nothing(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    options = StackOptions(
        customers=150,
        seed=9,
        strategy="cursor",
        page_size=5,
        poll_interval=1.0,
        syspro_source={"full_scan_every": 3},
    )
    async with running_pipeline(kafka, tmp_path / "stack", options) as p:
        sim, mc, conn = p.stack.syspro, p.stack.mailchimp, p.connection_id
        await eventually(lambda: compare(p.stack).ok, 180, 0.5, "the initial load")
        opted_code = next(r["Customer"] for r in sim.rows() if _member_of(p, r["Customer"]))
        opted_email = _member_of(p, opted_code)["email_address"]  # type: ignore[index]
        mc.unsubscribe_by_contact(p.list_id, opted_email)
        async with p.supervised(), p.stack.audit_client() as api:
            for case in CUSTOMERS:
                sim.create(case.row)
            oversized = oversized_changes(conn)
            await produce(kafka, CUSTOMER_CHANGED.name, oversized)
            codes = [c.code for c in CUSTOMERS] + [e.customer for e in oversized]
            await eventually(lambda: _all_known(api, codes), 240, 1.0, "every corpus customer in the audit")

            # Deleted and re-created; deletes found through the poller's key lookups.
            await eventually(lambda: _member_of(p, "RECREATE"), 120, 0.5, "RECREATE's member")
            recreate_row = {k: v for k, v in sim.get("RECREATE").items() if k != "TimeStamp"}  # type: ignore[union-attr]
            again = recreate_row["Email"]
            for code in ("RECREATE", *DELETED):
                sim.delete(code)
            await eventually(
                lambda: "inactive" in _tags(mc.member(p.list_id, again)), 180, 0.5, "delete seen"
            )
            sim.create(recreate_row)
            await eventually(
                lambda: "inactive" not in _tags(mc.member(p.list_id, again)), 180, 0.5, "re-created"
            )

            # Garbage straight onto every topic, shadowing real state on the compacted ones, written
            # while the poller is stopped (a run would overwrite its checkpoint garbage at once), then
            # every service restarted, so each reads its state topics anew.
            generated = [r["Customer"] for r in sim.rows() if r["Customer"].isdigit()]
            members = [c for c in generated if c != opted_code and _member_of(p, c)]
            shadowed, normal = members[0], members[1]
            shadowed_hash = _member_of(p, shadowed)["id"]  # type: ignore[index]
            keys = {
                CUSTOMER_SNAPSHOT.name: customer_key(conn, opted_code),
                POLL_CHECKPOINT.name: conn.encode(),
                MEMBER_STATE.name: customer_key(conn, shadowed),
                EMAIL_OWNERSHIP.name: f"{conn}:{p.stack.options.audience_id}:{shadowed_hash}".encode(),
            }
            assert p.stop("poller") == 0
            placed = await _write_raw(kafka, raw_records(conn, keys))
            await _restart_all(p)

            # After all of it: a normal change, and changes to the customers whose state was shadowed.
            since = datetime.now(UTC)
            sim.update(normal, Telephone="AFTER-CORPUS")
            sim.update(opted_code, Telephone="AFTER-GARBAGE")
            sim.update(shadowed, Telephone="AFTER-GARBAGE")
            await eventually(
                lambda: (_member_of(p, normal) or {}).get("merge_fields", {}).get("PHONE") == "AFTER-CORPUS",
                180,
                0.5,
                "a normal change after the corpus",
            )
            dump = await p.settled(since=since, timeout=300)
            states = {code: await _states(api, code) for code in codes}
            timelines = {
                code: (await api.get(f"/customers/{quote(code, safe='')}/timeline")).status_code
                for code in codes
            }

        departed, departure_issues = observed_departures(dump, {})
        rows = [*sim.rows(), *(dict(e.row) for e in oversized if e.customer == "HUGE1")]
        report = compare(
            (rows, mc.members(p.list_id)), stack_audience(p.stack), departed=departed, opted_out=[opted_email]
        )
        sent = delivery(dump)
        audit_figures, audit_issues = audit_problems(dump, p.audit_db)
        found = leaks(p, dump)
        problems = _case_problems(p, states, timelines) + _raw_problems(p, dump, placed)
        # The poller republishes a customer whose snapshot it cannot read (and logs it): expected here.
        healed = f"re-emitted: {opted_code} "
        problems += departure_issues + audit_issues + [x for x in sent.problems if not x.startswith(healed)]
        problems += _state_log_problems(p)
        problems += [f"secret leaked: {leak.secret} in {leak.where}" for leak in found]
        problems += [f"{name} exited on its own ({code})" for name, code, _ in p.unplanned_exits]
        if not report.ok:
            problems.append(report.render())
        opted = mc.member(p.list_id, opted_email)

    record_figures(
        "hostile_input",
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "customer_cases": len(CUSTOMERS) + len(oversized),
            "raw_records": len(placed),
            "topics_hit": len({r.topic for r in placed.values()}),
            "dead_letters": len(dump.records[DEAD_LETTER.name]),
            "timeline_status": {c: s for c, s in timelines.items() if s != 200},
            **report.counts(),
            **audit_figures,
            "problems": problems[:50],
        },
    )
    assert opted is not None and opted["status"] == "unsubscribed"
    assert not problems, "\n".join(problems[:40])


async def _all_known(api: httpx.AsyncClient, codes: list[str]) -> bool:
    for code in codes:
        if not await _states(api, code):
            return False
    return True


def _case_problems(
    p: Pipeline, states: dict[str, list[dict[str, Any]]], timelines: dict[str, int]
) -> list[str]:
    """Each corpus customer is a member in sync, or rejected with the reason the case names."""
    problems: list[str] = []
    for case in CUSTOMERS:
        entries = states[case.code]
        statuses = {(e["status"], e["reason"]) for e in entries}
        wanted = case.outcome.split("|")
        member_ok = "member" in wanted and any(s == "in_sync" for s, _ in statuses)
        reason_ok = any(s in ("rejected", "excluded") and r in wanted for s, r in statuses)
        if case.code not in DELETED and not (member_ok or reason_ok):
            problems.append(f"{case.code!r} ({case.why}): want {case.outcome}, audit says {sorted(statuses)}")
        member = _member_of(p, case.code)
        for tag, value in case.fields.items():
            have = (member or {}).get("merge_fields", {}).get(tag)
            if have != value:
                problems.append(f"{case.code!r} ({case.why}): {tag} is {have!r}, want {value!r}")
        if timelines[case.code] != 200:
            problems.append(
                f"{case.code!r}: GET /customers/{{code}}/timeline answered {timelines[case.code]}"
            )
    huge = states.get("HUGE2", [])
    if not any(e["reason"] == "invalid_email" for e in huge):
        problems.append(f"HUGE2 (a 300-character address): want invalid_email, audit says {huge}")
    return problems


def _raw_problems(p: Pipeline, dump: Any, placed: dict[tuple[str, int, int], RawRecord]) -> list[str]:
    """Every raw record is in the audit with its reason, and dead-lettered with it by its consumer."""
    problems: list[str] = []
    topics = sorted({k[0] for k in placed})
    marks = ",".join("?" * len(topics))
    rows = {
        (r["topic"], r["kafka_partition"], r["kafka_offset"]): r
        for r in p.audit_db.rows(f"topic IN ({marks})", *topics)
    }
    letters: dict[tuple[str, int, int], str] = {}
    for rec in dump.records[DEAD_LETTER.name]:
        headers = {k: v.decode() for k, v in rec.headers or ()}
        source = headers.get("mlc.error.topic", "").removeprefix(p.kafka.namespace)
        letters[
            (source, int(headers.get("mlc.error.partition", -1)), int(headers.get("mlc.error.offset", -1)))
        ] = headers.get("mlc.error.reason", "")
    for where, rec in placed.items():
        topic = rec.topic
        label = f"{rec.name!r} on {topic}"
        if topic in STREAM_CONSUMER:
            reason = letters.get(where)
            if reason != rec.reason:
                problems.append(
                    f"{label}: {STREAM_CONSUMER[topic]} dead-lettered it with {reason!r}, want {rec.reason!r}"
                )
        row = rows.get(where)
        audited = topic in STREAM_CONSUMER or topic in AUDITED_ONLY
        if not audited:
            continue
        if row is None:
            problems.append(f"{label}: not in the audit")
        elif topic == DEAD_LETTER.name:
            if row["kind"] != "dead_letter" or not row["reason"]:
                problems.append(f"{label}: audit row {row['kind']}/{row['reason']}")
        elif rec.reason == "unexpected_type":
            if row["kind"] == "event" and topic in AUDITED_ONLY:
                problems.append(f"{label}: stored as a plain {row['event_type']} event, no reason given")
        elif row["kind"] != "undecodable" or row["reason"] != rec.reason:
            problems.append(
                f"{label}: audit row {row['kind']}/{row['reason']}, want undecodable/{rec.reason}"
            )
    return problems


#: What each service must log when it skips a garbage record on a state topic it reads (patterns).
STATE_WARNINGS = {
    "poller": (r"snapshot", r"checkpoint"),
    "mapper": (r"ownership record", r"member.state"),
}


def _state_log_problems(p: Pipeline) -> list[str]:
    """Compacted topics are not audited: the service reading one must at least say what it skipped."""
    problems: list[str] = []
    for service, patterns in STATE_WARNINGS.items():
        lines = p.process(service).logs().splitlines()
        warnings = [line for line in lines if '"level":"warning"' in line or '"level":"error"' in line]
        for pattern in patterns:
            if not any(re.search(pattern, line) for line in warnings):
                problems.append(f"{service} logged no warning about garbage on its {pattern!r} state")
    return problems
