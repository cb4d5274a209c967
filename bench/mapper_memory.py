"""The mapper's state at scale: resident memory per customer and the CPU cost of its per-change table work.

    python -m bench.mapper_memory --customers 100000
    python -m bench.mapper_memory --customers 1000000 --changes 100000

Fills ``MapperTables`` in this process the way the mapper does on start (member states restored per
partition, the email-ownership table restored in bulk), with customers like the SYSPRO simulator's: one
audience each, an address, its 32-hex subscriber hash, a status, two tags, and the owner entry of the
address. Then replays changes the way ``MapperPipeline`` touches the tables for each (read the member,
look the address's owner up, store the new member; one change in ten is a new address: release the old
owner entry, claim the new one; a commit every ``--batch`` changes) and reports CPU time per change.
RSS is the whole process (psutil), so it includes the interpreter and the modules the mapper imports.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import time
from collections.abc import Sequence
from typing import Any

import psutil

from services.mapper.records import AudienceMemory, CustomerMemory
from services.mapper.tables import MapperTables
from shared.topics import CUSTOMER_PARTITIONS

CONNECTION = "acme"
AUDIENCE = "main"
STATUSES = ("subscribed", "subscribed", "subscribed", "pending", "unsubscribed")
BRANCHES = tuple(f"branch-{b:02d}" for b in range(12))
AREAS = tuple(f"area-{a}" for a in ("north", "south", "east", "west", "central"))


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def customer_id(n: int) -> str:
    return f"C{n:07d}"


def email(n: int, generation: int = 0) -> str:
    suffix = f".{generation}" if generation else ""
    return f"customer.{n}{suffix}@example-{n % 997}.co.uk"


def memory_of(n: int, generation: int = 0, *, rng: random.Random) -> tuple[CustomerMemory, str]:
    address = email(n, generation)
    subscriber_hash = hashlib.md5(address.encode()).hexdigest()
    status = STATUSES[n % len(STATUSES)]
    tags = (rng.choice(BRANCHES), rng.choice(AREAS))
    member = AudienceMemory(address, subscriber_hash, status, False, status == "unsubscribed", tags)
    return {AUDIENCE: member}, subscriber_hash


def partition_of(n: int) -> int:
    return n % CUSTOMER_PARTITIONS


def owner_key(subscriber_hash: str) -> str:
    return f"{CONNECTION}:{AUDIENCE}:{subscriber_hash}"


def fill(tables: MapperTables, customers: int, seed: int = 7, chunk: int = 5000) -> None:
    """Restore ``customers`` customers as the service does: the ownership table first, in chunks of the
    size the feed reads, then the member states of each partition, streamed."""
    rng = random.Random(seed)
    load_owners = getattr(tables, "load_owners", None)
    for start in range(0, customers, chunk):
        entries = [
            (owner_key(hashlib.md5(email(n).encode()).hexdigest()), customer_id(n))
            for n in range(start, min(start + chunk, customers))
        ]
        if load_owners is not None:
            load_owners(entries)
        else:  # the dict representation: the service updates ``owners`` with the loaded table
            tables.owners.update(entries)  # type: ignore[attr-defined]
    for partition in range(CUSTOMER_PARTITIONS):
        states = (
            (f"{CONNECTION}:{customer_id(n)}", memory_of(n, rng=rng)[0])
            for n in range(partition, customers, CUSTOMER_PARTITIONS)
        )
        # The dict representation keeps the mapping it is given; the store takes the pairs streamed.
        tables.load_partition(partition, states if load_owners is not None else dict(states))


def replay(tables: MapperTables, customers: int, changes: int, batch: int, seed: int = 11) -> float:
    """CPU seconds per change for the table work of ``changes`` changes to random customers."""
    rng = random.Random(seed)
    picks = [rng.randrange(customers) for _ in range(changes)]
    generations: dict[int, int] = {}
    gc.collect()
    started = time.process_time()
    for i, n in enumerate(picks):
        partition = partition_of(n)
        key = f"{CONNECTION}:{customer_id(n)}"
        before = tables.member(partition, key)
        assert before is not None
        old_hash = before[AUDIENCE].subscriber_hash
        assert old_hash is not None
        generation = generations.get(n, 0)
        if i % 10 == 0:
            generation += 1
            generations[n] = generation
        memory, new_hash = memory_of(n, generation, rng=rng)
        tables.owner(owner_key(new_hash))
        tables.put_member(partition, key, memory)
        if new_hash != old_hash:
            tables.release(owner_key(old_hash))
            tables.claim(owner_key(new_hash), customer_id(n))
        if i % batch == batch - 1:
            tables.commit()
    tables.commit()
    return (time.process_time() - started) / changes


def pipeline(tables: MapperTables, rows: int, batch: int) -> tuple[float, float]:
    """CPU seconds per change through ``MapperPipeline.handle`` (decode, decide, tables, encode) for
    ``rows`` generated customers added to the filled tables, then for the same customers changed again."""
    from services.mapper.pipeline import MapperPipeline
    from services.mapper.plan import plan_connections
    from shared.codec import encode
    from shared.topics import CUSTOMER_CHANGED
    from tests.mapper.bench_mapper import AUDIENCE as PLAN_AUDIENCE
    from tests.mapper.bench_mapper import changes as generated_changes
    from tests.mapper.factories import config, record

    handler = MapperPipeline(plan_connections(config(PLAN_AUDIENCE)), tables)
    events = generated_changes(rows)
    created = [record(encode(e), CUSTOMER_CHANGED.name, i % 6, i, e.key()) for i, e in enumerate(events)]
    for e in events:
        e.row["Telephone"] = "0800 000 000"  # a changed row: same address, new merge field
    updated = [
        record(encode(e.model_copy(update={"change": "updated"})), CUSTOMER_CHANGED.name, i % 6, i, e.key())
        for i, e in enumerate(events)
    ]
    rates = []
    for records in (created, updated):
        gc.collect()
        started = time.process_time()
        for i in range(0, len(records), batch):
            handler.handle(records[i : i + batch])
            tables.commit()
        rates.append((time.process_time() - started) / len(records))
    return rates[0], rates[1]


def build_only(changes: int, seed: int = 11) -> float:
    """CPU seconds per change spent building the change's records (subtracted from ``replay``)."""
    rng = random.Random(seed)
    started = time.process_time()
    for i in range(changes):
        n = rng.randrange(1000)
        f"{CONNECTION}:{customer_id(n)}"
        memory_of(n, i % 10 == 0, rng=rng)
    return (time.process_time() - started) / changes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=50_000, help="changes replayed to time the CPU cost")
    parser.add_argument("--batch", type=int, default=1000, help="changes per commit (max_batch)")
    parser.add_argument("--pipeline", type=int, default=20_000, help="generated changes through the handler")
    parser.add_argument("--cache-mb", type=int, default=None, help="SQLite page cache (the store's setting)")
    args: Any = parser.parse_args(argv)
    gc.collect()
    base = rss()
    tables = MapperTables() if args.cache_mb is None else MapperTables(cache_mb=args.cache_mb)
    started = time.perf_counter()
    fill(tables, args.customers)
    load_s = time.perf_counter() - started
    gc.collect()
    filled = rss()
    per_change = replay(tables, args.customers, args.changes, args.batch)
    building = build_only(args.changes)
    after = rss()
    peak = _peak_rss()
    created_s, updated_s = pipeline(tables, args.pipeline, args.batch) if args.pipeline else (0.0, 0.0)
    per_customer = (filled - base) / args.customers
    print(f"representation: {type(tables).__module__}.{type(tables).__name__}")
    print(f"customers: {args.customers:,}  (members {tables.member_count:,}, owners {len(tables.owners):,})")
    print(f"RSS before fill: {_mb(base)}; after fill: {_mb(filled)}; after changes: {_mb(after)}")
    print(f"peak RSS (process, before the pipeline run's generated data): {_mb(peak)}")
    print(f"bytes per customer (fill): {per_customer:,.0f}")
    print(f"restore time: {load_s:,.1f} s ({args.customers / load_s:,.0f} customers/s)")
    table_us = (per_change - building) * 1e6
    print(
        f"per change: {per_change * 1e6:,.1f} us CPU incl. building the records; "
        f"table work alone {table_us:,.1f} us ({args.changes:,} changes, commit every {args.batch})"
    )
    if args.pipeline:
        print(
            f"through MapperPipeline.handle ({args.pipeline:,} generated customers on top): "
            f"{created_s * 1e6:,.1f} us CPU per new customer, {updated_s * 1e6:,.1f} us per changed one"
        )
    close = getattr(tables, "close", None)
    if close is not None:
        close()


def _peak_rss() -> int:
    """VmHWM: the process's peak resident set (Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss()


if __name__ == "__main__":
    main()
