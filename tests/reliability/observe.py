"""Reading what the running pipeline did: Prometheus text, topic records, group offsets, the audit DB.

Everything here reads from the outside, the way an operator would: ``/metrics`` over HTTP, committed
records and committed offsets from the broker, and the audit's SQLite file opened read-only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from shared.codec import DecodeError, decode
from shared.events import Event
from shared.kafka import make_admin
from shared.settings import KafkaSettings
from shared.topics import ALL_TOPICS, by_name
from tests.helpers import read_all

__all__ = [
    "AuditDb",
    "Metrics",
    "TopicDump",
    "committed_offsets",
    "dump_topics",
    "scrape",
]


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Metrics:
    """One scrape of a service's ``/metrics``, queried by name and label subsets."""

    def __init__(self, text: str) -> None:
        self.samples = [
            Sample(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def by(self, name: str, label: str) -> dict[str, float]:
        """``name`` summed per value of ``label``."""
        out: dict[str, float] = {}
        for s in self.samples:
            if s.name == name and label in s.labels:
                out[s.labels[label]] = out.get(s.labels[label], 0.0) + s.value
        return out


async def scrape(url: str) -> Metrics:
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"{url}/metrics")
        response.raise_for_status()
        return Metrics(response.text)


@dataclass
class TopicDump:
    """Every committed record of every topic of a namespace (registry names as keys)."""

    records: dict[str, list[ConsumerRecord[bytes, bytes]]]

    def events(self, topic: str) -> list[Event]:
        return [decode(r.value) for r in self.records[topic] if _decodable(r.value)]

    def typed_events(self, topic: str) -> list[Event]:
        """The decodable events of a type that belongs on ``topic`` (others are someone's mistake)."""
        types = by_name(topic).value_types
        return [e for e in self.events(topic) if isinstance(e, types)]

    def undecodable(self, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
        return [r for r in self.records[topic] if not _decodable(r.value)]

    def last_offsets(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """Per (registry topic, partition): the offset just past the last committed record."""
        out: dict[tuple[str, int], int] = {}
        for topic in topics:
            for r in self.records[topic]:
                key = (topic, r.partition)
                out[key] = max(out.get(key, 0), r.offset + 1)
        return out

    def all_bytes(self) -> Iterator[tuple[str, bytes]]:
        """(where, bytes) for every key, value and header value on every topic."""
        for topic, records in self.records.items():
            for r in records:
                where = f"{topic}[{r.partition}]@{r.offset}"
                for part in (r.key, r.value):
                    if part:
                        yield where, part
                for name, value in r.headers or ():
                    if value:
                        yield f"{where} header {name}", value


def _decodable(value: bytes | None) -> bool:
    try:
        decode(value)
    except DecodeError:
        return False
    return True


async def dump_topics(kafka: KafkaSettings, topics: Iterable[str] | None = None) -> TopicDump:
    names = list(topics) if topics is not None else [t.name for t in ALL_TOPICS]
    return TopicDump({name: await read_all(kafka, name, timeout=60.0) for name in names})


async def committed_offsets(kafka: KafkaSettings, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets, per (registry topic, partition)."""
    admin = make_admin(kafka, "reliability-offsets")
    await admin.start()
    try:
        offsets: dict[TopicPartition, Any] = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        (tp.topic.removeprefix(kafka.namespace), tp.partition): meta.offset
        for tp, meta in offsets.items()
        if meta.offset >= 0
    }


class AuditDb:
    """The audit service's SQLite store, opened read-only while the service keeps writing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            yield connection
        finally:
            connection.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + 30
        while True:
            try:
                with self._connect() as db:
                    return list(db.execute(sql, params).fetchall())
            except sqlite3.OperationalError:
                # The writer may hold the lock for a moment, or the file may not exist yet.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kinds(self) -> dict[str, int]:
        return {
            str(kind): int(n) for kind, n in self.query("SELECT kind, count(*) FROM events GROUP BY kind")
        }

    def event_rows(self) -> tuple[int, int]:
        """(rows of kind ``event``, distinct event ids among them)."""
        rows, distinct = self.query(
            "SELECT count(*), count(DISTINCT event_id) FROM events WHERE kind = 'event'"
        )[0]
        return int(rows), int(distinct)

    def event_ids(self, topic: str | None = None) -> Counter[str]:
        sql = "SELECT event_id FROM events WHERE kind = 'event'"
        rows = self.query(sql + " AND topic = ?", topic) if topic else self.query(sql)
        return Counter(r[0] for r in rows)

    def positions(self) -> dict[tuple[str, int], int]:
        return {
            (t, p): o for t, p, o in self.query("SELECT topic, kafka_partition, kafka_offset FROM positions")
        }

    def rows(self, where: str, *params: Any) -> list[dict[str, Any]]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(f"SELECT * FROM events WHERE {where}", params)]

    def all_bytes(self) -> bytes:
        """The database's bytes (main file and write-ahead log): what a secret scan reads."""
        data = b""
        for suffix in ("", "-wal", "-journal"):
            path = Path(f"{self.path}{suffix}")
            if path.exists():
                data += path.read_bytes()
        return data
