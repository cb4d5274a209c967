"""CPU per record of the audit's write path, in-process: ``python -m bench.audit_micro``.

Builds the records an initial load gives the audit (per customer: CustomerChanged, MailchimpMemberUpsert
and MemberSynced; every 50th customer is rejected instead; one PollRunCompleted per run), encoded with
the real codec, as aiokafka ``ConsumerRecord``s. Times what the audit does with each fetched batch:
the shell's conversion (``consumed_records``) and ``AuditStore.append`` (projection, rows, read models,
positions, commit) against a fresh database, with the garbage collector tuned as the service tunes it
(``--default-gc`` to compare). Kafka itself (fetch parsing, commits) is not in the
clock: that part of the service's CPU is the same before and after any change here.

python -m bench.audit_micro                      SQLite temp file, 10,000 customers, batches of 2,000
python -m bench.audit_micro --postgres           also PostgreSQL (MLC_TEST_POSTGRES_URL, a fresh schema)
python -m bench.audit_micro --profile out.txt    cProfile of the SQLite run, top functions by tottime
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import os
import pstats
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from urllib.parse import quote

from aiokafka.structs import ConsumerRecord
from sqlalchemy import create_engine, func, select, text

from services.audit.app import consumed_records
from services.audit.schema import events
from services.audit.store import AuditStore
from shared.codec import encode
from shared.events import (
    CustomerChanged,
    CustomerRejected,
    Event,
    MailchimpMemberUpsert,
    MemberSynced,
    PollRunCompleted,
    RowValue,
)
from shared.runtime import tune_gc
from shared.topics import CUSTOMER_CHANGED, CUSTOMER_REJECTED, MEMBER_RESULT, MEMBER_UPSERT, POLL_RUN

NAMESPACE = "bench."
PARTITIONS = 6
RUN_SIZE = 5000
WAVE = 1000
TOPIC_OF = {
    CustomerChanged: CUSTOMER_CHANGED.name,
    MailchimpMemberUpsert: MEMBER_UPSERT.name,
    MemberSynced: MEMBER_RESULT.name,
    CustomerRejected: CUSTOMER_REJECTED.name,
    PollRunCompleted: POLL_RUN.name,
}


def customer_events(i: int, run_id: uuid.UUID, at: datetime) -> list[Event]:
    code = f"C{i:07d}"
    email = f"{code.lower()}@example.com"
    row: dict[str, RowValue] = {
        "Customer": code,
        "Name": f"Customer {code} Pty Ltd",
        "Contact": "Jane Smith",
        "Email": email,
        "Telephone": "+27 11 555 0100",
        "SoldToAddr1": "12 Main Road",
        "SoldToAddr3": "Johannesburg",
        "SoldPostalCode": "2001",
        "Branch": "10",
        "Salesperson": "AB1",
        "CustomerClass": "RT",
        "Currency": "ZAR",
        "InvoiceCount": 42,
        "CreditLimit": 50000.0,
    }
    change = CustomerChanged(
        connection_id="acme",
        customer=code,
        change="created",
        row=row,
        row_hash=hashlib.sha256(code.encode()).hexdigest(),
        run_id=run_id,
        strategy="snapshot",
        correlation_id=run_id,
        occurred_at=at,
    )
    if i % 50 == 49:
        rejected = CustomerRejected(
            connection_id="acme",
            customer=code,
            reason="invalid_email",
            field="Email",
            value=email,
            detail="not an email address",
            causation_id=change.event_id,
            correlation_id=run_id,
            occurred_at=at + timedelta(milliseconds=5),
        )
        return [change, rejected]
    command = MailchimpMemberUpsert(
        connection_id="acme",
        customer=code,
        audience_id="retail",
        list_id="a1b2c3d4e5",
        email_address=email,
        subscriber_hash=hashlib.md5(email.encode()).hexdigest(),
        merge_fields={"FNAME": "Jane", "LNAME": "Smith", "COMPANY": f"Customer {code} Pty Ltd"},
        tags_add=["branch-10"],
        causation_id=change.event_id,
        correlation_id=run_id,
        occurred_at=at + timedelta(milliseconds=5),
        change_occurred_at=at,
    )
    synced = MemberSynced(
        connection_id="acme",
        customer=code,
        audience_id="retail",
        list_id="a1b2c3d4e5",
        email_address=email,
        subscriber_hash=command.subscriber_hash,
        outcome="created",
        mailchimp_status="subscribed",
        causation_id=command.event_id,
        correlation_id=run_id,
        occurred_at=at + timedelta(milliseconds=40),
        command_occurred_at=command.occurred_at,
    )
    return [change, command, synced]


def build_records(customers: int) -> Iterator[ConsumerRecord[bytes, bytes]]:
    """Every record, in arrival order, numbered per (topic, partition) as a broker would."""
    start = datetime.now(UTC).replace(microsecond=123456)
    offsets: dict[tuple[str, int], int] = {}

    def record(event: Event) -> ConsumerRecord[bytes, bytes]:
        topic = NAMESPACE + TOPIC_OF[type(event)]
        key = event.key()
        partition = 0 if topic.endswith(POLL_RUN.name) else int.from_bytes(key[-2:]) % PARTITIONS
        offset = offsets.get((topic, partition), 0)
        offsets[(topic, partition)] = offset + 1
        value = encode(event)
        stamp = int(event.occurred_at.timestamp() * 1000)
        return ConsumerRecord(topic, partition, offset, stamp, 0, key, value, None, len(key), len(value), ())

    for first in range(0, customers, RUN_SIZE):
        run_id = uuid.uuid4()
        count = min(RUN_SIZE, customers - first)
        # Stages lag one another, so a fetched batch holds mostly one topic: a wave's changes, then
        # its commands and rejections, then its results (a customer's sync state is written twice).
        for wave in range(first, first + count, WAVE):
            flows = [
                customer_events(i, run_id, start + timedelta(milliseconds=i))
                for i in range(wave, min(wave + WAVE, first + count))
            ]
            for step in range(3):
                for flow in flows:
                    if step < len(flow):
                        yield record(flow[step])
        yield record(
            PollRunCompleted(
                connection_id="acme",
                run_id=run_id,
                strategy="snapshot",
                full_scan=True,
                started_at=start,
                rows_read=count,
                odata_requests=1,
                created=count,
                updated=0,
                deleted=0,
                correlation_id=run_id,
                occurred_at=start + timedelta(milliseconds=first + count),
            )
        )


def run(url: str, customers: int, batch: int, profile: str | None, tune: bool) -> None:
    """Store every record, a batch at a time; only the store's work is on the clock.

    Records are made batch by batch (outside the clock), so the heap the garbage collector walks is
    about the service's own, not tens of thousands of pending records.
    """
    store = AuditStore.open(url, namespace=NAMESPACE)
    profiler = cProfile.Profile() if profile else None
    wall = cpu = 0.0
    n = 0
    records = build_records(customers)
    gc.collect()
    if tune:
        tune_gc()  # as every service does once started
    try:
        while chunk := list(islice(records, batch)):
            n += len(chunk)
            t, c = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            store.append(consumed_records(chunk, NAMESPACE))
            if profiler:
                profiler.disable()
            wall += time.perf_counter() - t
            cpu += time.process_time() - c
        with store.engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(events)).scalar_one()
    finally:
        store.close()
    assert stored == n, f"stored {stored} rows of {n} records"
    backend = url.split(":", 1)[0].split("+")[0]
    print(
        f"{backend:10s} {n:7d} records  CPU {cpu * 1000 / n:.4f} ms/record  "
        f"wall {wall * 1000 / n:.4f} ms/record  ({n / cpu:,.0f} records/s CPU)"
    )
    if profiler and profile:
        with open(profile, "w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
        print(f"profile: {profile}")


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2000, help="records per append (the service's batch)")
    parser.add_argument("--postgres", action="store_true", help="also run on MLC_TEST_POSTGRES_URL")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the SQLite run into FILE")
    parser.add_argument(
        "--default-gc", action="store_true", help="keep CPython's GC settings (the service tunes them)"
    )
    args = parser.parse_args()
    tune = not args.default_gc
    gc_mode = "tuned as the service does" if tune else "CPython defaults"
    print(f"{args.customers} customers, batches of {args.batch} records, GC {gc_mode}")
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'audit.db'}", args.customers, args.batch, args.profile, tune)
    if args.postgres:
        base = os.environ.get("MLC_TEST_POSTGRES_URL", "")
        if not base:
            raise SystemExit("--postgres needs MLC_TEST_POSTGRES_URL (scripts/postgres/pg-local.sh start)")
        with postgres_schema(base) as url:
            run(url, args.customers, args.batch, None, tune)


if __name__ == "__main__":
    main()
