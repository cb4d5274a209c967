"""The mapper's state: member states of its partitions, the global email-ownership table, and the
customers waiting for an address another customer owns.

The durable copies are compacted topics written in the same Kafka transaction as the commands. The local
copy is a state store in the manner of Kafka Streams' RocksDB stores: a SQLite file holding the member
states and the ownership table, rebuilt from the compacted topics at every start (so it is written
without syncing or a journal, and removed on close), with the current transaction's writes buffered in
memory. Reads look in the buffer first. Every change made while a batch is handled goes to the buffer
through an undo log: ``rollback`` restores the buffer when the transaction aborts (the batch is then
re-run against the same state it first saw), ``savepoint``/``rollback_to`` undo a single handler call
that raised (the processor then re-runs that batch one record at a time), ``commit`` writes the buffer
to the file in one SQLite transaction and forgets the log. Restores (``load_partition``,
``load_owners``) and ``drop_partition`` happen between transactions and write the file directly, in
bulk.

Memory therefore holds one batch of changes, the waiting customers and SQLite's page cache, whatever the
number of customers (about 800 bytes per customer with everything held in dicts). A member state is
stored as the marshalled tuple of its audiences' fields; the file is private to this process and never
outlives it, so the format never has to be read by another version.
"""

from __future__ import annotations

import contextlib
import marshal
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.mapper.records import AudienceMemory, CustomerMemory
from shared.events import RowValue

__all__ = ["MapperTables", "Waiter"]

_MISSING: Any = object()
#: In the ownership buffer: the key has no owner (released), whatever the file says.
_DELETED: Any = object()

_SCHEMA = """
CREATE TABLE members (partition INTEGER NOT NULL, key TEXT NOT NULL, state BLOB NOT NULL,
                      PRIMARY KEY (partition, key)) WITHOUT ROWID;
CREATE TABLE owners (key TEXT PRIMARY KEY NOT NULL, customer TEXT NOT NULL) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Waiter:
    """A customer rejected because another customer owns its address, with the row to retry with."""

    partition: int
    connection_id: str
    customer: str
    row: dict[str, RowValue]


def encode_memory(memory: CustomerMemory) -> bytes:
    """A member state as stored in the file."""
    return marshal.dumps(
        [
            (
                aid,
                m.email_address,
                m.subscriber_hash,
                m.mailchimp_status,
                m.archived,
                m.terminal,
                tuple(m.tags),
            )
            for aid, m in memory.items()
        ]
    )


def decode_memory(blob: bytes) -> CustomerMemory:
    return {
        aid: AudienceMemory(email, subscriber_hash, status, archived, terminal, tags)
        for aid, email, subscriber_hash, status, archived, terminal, tags in marshal.loads(blob)  # noqa: S302 (our own file)
    }


class _Store:
    """The SQLite file (autocommit connection: transactions are begun explicitly)."""

    def __init__(self, state_dir: str | Path | None, name: str, cache_mb: int) -> None:
        self.own_dir = state_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="mlc-mapper-")) if state_dir is None else Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{name}.sqlite3"
        self.remove_files()  # state is rebuilt from the topics at every start
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Nothing here has to survive a crash (the file is rebuilt at start): no syncing, no journal.
        # Measured with bench.mapper_memory at 1M customers, WAL cost 10-30% more CPU per change (every
        # page written twice) and restored 1.5x slower; a journal in memory cost more CPU still. Without
        # a journal a failed flush may leave part of it in the file: harmless, since those are the same
        # committed values the buffer still holds and the next commit writes again.
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute(f"PRAGMA cache_size=-{max(1, cache_mb) * 1024}")
        self.conn.execute("PRAGMA temp_store=MEMORY")
        self.conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite write transaction (the connection runs in autocommit mode otherwise)."""
        self.conn.execute("BEGIN")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise

    def remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def close(self) -> None:
        self.conn.close()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            self.remove_files()


class _Owners(Mapping[str, str]):
    """``MapperTables.owners``: a read-only view of the ownership table (iterating reads the whole file:
    for tests and diagnostics, not the per-change path)."""

    def __init__(self, tables: MapperTables) -> None:
        self._tables = tables

    def __getitem__(self, key: str) -> str:
        customer = self._tables.owner(key)
        if customer is None:
            raise KeyError(key)
        return customer

    def get(self, key: str, default: Any = None) -> Any:
        customer = self._tables.owner(key)
        return default if customer is None else customer

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._tables.owner(key) is not None

    def __len__(self) -> int:
        return self._tables.owner_count

    def __iter__(self) -> Iterator[str]:
        tables = self._tables
        buffered = dict(tables._owner_buffer)
        rows = tables._sql.execute("SELECT key FROM owners ORDER BY key").fetchall()
        for (key,) in rows:
            if key not in buffered:
                yield key
        for key, customer in buffered.items():
            if customer is not _DELETED:
                yield key


class _Partition(Mapping[str, CustomerMemory]):
    """One partition of ``MapperTables.members`` (read-only; iterating reads the partition's keys)."""

    def __init__(self, tables: MapperTables, partition: int) -> None:
        self._tables = tables
        self._partition = partition

    def __getitem__(self, key: str) -> CustomerMemory:
        memory = self._tables.member(self._partition, key)
        if memory is None:
            raise KeyError(key)
        return memory

    def __len__(self) -> int:
        return self._tables._partition_count(self._partition)

    def __iter__(self) -> Iterator[str]:
        tables = self._tables
        buffered = list(tables._member_buffer.get(self._partition, {}))
        rows = tables._sql.execute(
            "SELECT key FROM members WHERE partition = ? ORDER BY key", (self._partition,)
        ).fetchall()
        seen = set(buffered)
        for (key,) in rows:
            if key not in seen:
                yield key
        yield from buffered


class _Members(Mapping[int, Mapping[str, CustomerMemory]]):
    """``MapperTables.members``: partition -> customer key -> state, read-only."""

    def __init__(self, tables: MapperTables) -> None:
        self._tables = tables

    def __getitem__(self, partition: int) -> Mapping[str, CustomerMemory]:
        if partition not in self._tables._member_buffer:
            raise KeyError(partition)
        return _Partition(self._tables, partition)

    def __len__(self) -> int:
        return len(self._tables._member_buffer)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._tables._member_buffer))


class MapperTables:
    def __init__(
        self,
        track_own_writes: bool = False,
        *,
        state_dir: str | Path | None = None,
        name: str = "mapper-state",
        cache_mb: int = 16,
    ) -> None:
        """``state_dir``: where the SQLite file goes (default: a temporary directory removed on close);
        ``name``: the file's name in it (one file per process); ``cache_mb``: SQLite's page cache."""
        self._store = _Store(state_dir, name, cache_mb)
        self._sql = self._store.conn
        self._cursor = self._sql.cursor()
        self._finalizer = weakref.finalize(self, self._store.close)
        #: The current transaction's member states: partition (one entry per partition we hold) ->
        #: customer key (``connection:customer``) -> state.
        self._member_buffer: dict[int, dict[str, CustomerMemory]] = {}
        #: A customer's state as the file holds it (None: not there), per partition, as read since the
        #: last flush: tells an insert from an update, and skips writing a state that did not change.
        self._member_stored: dict[int, dict[str, bytes | None]] = {}
        #: Stored member states per partition (None: count again).
        self._member_counts: dict[int, int | None] = {}
        #: ``connection:audience:hash`` -> owning customer, or ``_DELETED``: changes not yet in the file.
        self._owner_buffer: dict[str, Any] = {}
        #: Owners as the file holds them (None: no owner), as read since the last flush.
        self._owner_seen: dict[str, str | None] = {}
        self._owner_stored: int | None = 0
        #: ``connection:audience:hash`` -> customer key -> waiter, in arrival order (first come first served).
        self._waiting: dict[str, dict[str, Waiter]] = {}
        self._waits_for: dict[str, frozenset[str]] = {}
        self._undo: list[tuple[dict[Any, Any], Any, Any]] = []
        #: Own ownership writes not yet seen back on the topic, per key (only when the topic is tailed).
        self._track = track_own_writes
        self._unseen: dict[str, int] = {}
        #: Read-only views: ``members[partition][customer_key]`` and ``owners[owner_key]``.
        self.members: Mapping[int, Mapping[str, CustomerMemory]] = _Members(self)
        self.owners: Mapping[str, str] = _Owners(self)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._store.path

    def close(self) -> None:
        """Close the store and remove its file (also done when the tables are garbage-collected)."""
        self._finalizer()

    # --- transactions -------------------------------------------------------------------------

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._undo.append((table, key, table.get(key, _MISSING)))
        if value is _MISSING:
            table.pop(key, None)
        else:
            table[key] = value

    def savepoint(self) -> int:
        return len(self._undo)

    def rollback_to(self, mark: int) -> None:
        while len(self._undo) > mark:
            table, key, old = self._undo.pop()
            if old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old

    def rollback(self) -> None:
        self.rollback_to(0)

    def commit(self) -> None:
        """Write the buffered changes to the file (one SQLite transaction) and forget the undo log."""
        self._undo.clear()
        self._flush()
        # Empty waiter lists are dropped only now: the undo log may still have pointed into them.
        for owner_key in [k for k, waiters in self._waiting.items() if not waiters]:
            del self._waiting[owner_key]

    def _flush(self) -> None:
        if not self._owner_buffer and not any(self._member_buffer.values()):
            return
        counts = self._member_counts
        owners_stored = self._owner_stored
        try:
            with self._store.transaction() as sql:
                for partition, buffered in self._member_buffer.items():
                    if not buffered:
                        continue
                    updates: list[tuple[bytes, int, str]] = []
                    inserts: list[tuple[int, str, bytes]] = []
                    for key, memory in buffered.items():
                        state = encode_memory(memory)
                        was = self._stored_state(partition, key)
                        if was is None:
                            inserts.append((partition, key, state))
                        elif was != state:
                            updates.append((state, partition, key))
                    sql.executemany("UPDATE members SET state = ? WHERE partition = ? AND key = ?", updates)
                    sql.executemany("INSERT INTO members VALUES (?, ?, ?)", inserts)
                    count = counts.get(partition)
                    if count is not None:
                        counts[partition] = count + len(inserts)
                deletes: list[tuple[str]] = []
                owner_updates: list[tuple[str, str]] = []
                owner_inserts: list[tuple[str, str]] = []
                for key, customer in self._owner_buffer.items():
                    current = self._stored_owner(key)
                    if customer is _DELETED:
                        if current is not None:
                            deletes.append((key,))
                    elif current is None:
                        owner_inserts.append((key, customer))
                    elif current != customer:
                        owner_updates.append((customer, key))
                sql.executemany("DELETE FROM owners WHERE key = ?", deletes)
                sql.executemany("UPDATE owners SET customer = ? WHERE key = ?", owner_updates)
                sql.executemany("INSERT INTO owners VALUES (?, ?)", owner_inserts)
                if owners_stored is not None:
                    owners_stored += len(owner_inserts) - len(deletes)
        except BaseException:
            self._member_counts = {p: None for p in counts}
            self._owner_stored = None
            raise
        finally:
            # What was learnt about the file is stale once it was written (or its write failed).
            for stored in self._member_stored.values():
                stored.clear()
            self._owner_seen.clear()
        self._owner_stored = owners_stored
        for buffered in self._member_buffer.values():
            buffered.clear()
        self._owner_buffer.clear()

    # --- member states ------------------------------------------------------------------------

    def member(self, partition: int, key: str) -> CustomerMemory | None:
        buffered = self._member_buffer.get(partition)
        if buffered is None:
            return None
        memory = buffered.get(key)
        if memory is not None:
            return memory
        state = self._stored_state(partition, key)
        return None if state is None else decode_memory(state)

    def _stored_state(self, partition: int, key: str) -> bytes | None:
        stored = self._member_stored[partition]
        state = stored.get(key, _MISSING)
        if state is _MISSING:
            row = self._cursor.execute(
                "SELECT state FROM members WHERE partition = ? AND key = ?", (partition, key)
            ).fetchone()
            state = stored[key] = row[0] if row is not None else None
        return state  # type: ignore[no-any-return]

    def put_member(self, partition: int, key: str, memory: CustomerMemory) -> None:
        buffered = self._member_buffer.get(partition)
        if buffered is None:
            buffered = self._member_buffer[partition] = {}
            self._member_stored[partition] = {}
            self._member_counts.setdefault(partition, None)
        self._set(buffered, key, memory)

    def load_partition(
        self, partition: int, states: Mapping[str, CustomerMemory] | Iterable[tuple[str, CustomerMemory]]
    ) -> None:
        """Replace a partition's states with ``states`` (a restore, between transactions: not undoable).

        ``states`` may be an iterable of ``(customer key, state)``, written as it is consumed, so that a
        restore never holds the whole partition decoded."""
        items = states.items() if isinstance(states, Mapping) else states
        try:
            with self._store.transaction() as sql:
                sql.execute("DELETE FROM members WHERE partition = ?", (partition,))
                sql.executemany(
                    "INSERT OR REPLACE INTO members VALUES (?, ?, ?)",
                    ((partition, key, encode_memory(memory)) for key, memory in items),
                )
        finally:
            self._member_counts[partition] = None
        self._member_buffer[partition] = {}  # a new buffer: undo entries of the old one point nowhere
        self._member_stored[partition] = {}

    def drop_partition(self, partition: int) -> None:
        """Forget a partition that moved to another instance (between transactions: not undoable)."""
        self._member_buffer.pop(partition, None)
        self._member_stored.pop(partition, None)
        self._member_counts.pop(partition, None)
        self._sql.execute("DELETE FROM members WHERE partition = ?", (partition,))
        moved = {
            c for waiters in self._waiting.values() for c, w in waiters.items() if w.partition == partition
        }
        mark = self.savepoint()
        for customer_key in moved:
            self.stop_waiting(customer_key)
        del self._undo[mark:]

    def _partition_count(self, partition: int) -> int:
        stored = self._member_counts.get(partition)
        if stored is None:
            row = self._sql.execute(
                "SELECT count(*) FROM members WHERE partition = ?", (partition,)
            ).fetchone()
            stored = self._member_counts[partition] = int(row[0])
        return stored + sum(
            self._stored_state(partition, key) is None for key in self._member_buffer.get(partition, {})
        )

    @property
    def member_count(self) -> int:
        return sum(self._partition_count(p) for p in self._member_buffer)

    # --- ownership ----------------------------------------------------------------------------

    def owner(self, key: str) -> str | None:
        customer = self._owner_buffer.get(key, _MISSING)
        if customer is _MISSING:
            return self._stored_owner(key)
        return None if customer is _DELETED else customer

    def _stored_owner(self, key: str) -> str | None:
        customer = self._owner_seen.get(key, _MISSING)
        if customer is _MISSING:
            row = self._cursor.execute("SELECT customer FROM owners WHERE key = ?", (key,)).fetchone()
            customer = self._owner_seen[key] = row[0] if row is not None else None
        return customer  # type: ignore[no-any-return]

    def _set_owner(self, key: str, customer: Any) -> None:
        # The undo entry holds the owner as it was (buffered or stored), so that a rollback restores it
        # even over a committed record applied in between, as a dict would.
        old = self.owner(key)
        self._undo.append((self._owner_buffer, key, _DELETED if old is None else old))
        self._owner_buffer[key] = customer

    def claim(self, key: str, customer: str) -> None:
        self._set_owner(key, customer)
        if self._track:
            self._set(self._unseen, key, self._unseen.get(key, 0) + 1)

    def release(self, key: str) -> None:
        self._set_owner(key, _DELETED)
        if self._track:
            self._set(self._unseen, key, self._unseen.get(key, 0) + 1)

    def load_owners(self, entries: Iterable[tuple[str, str | None]]) -> None:
        """Apply ownership records read from the topic at start, in log order (None: a tombstone);
        between transactions, not undoable. Called once per chunk of records read."""
        latest = dict(entries)  # the last record of a key wins, so the rest need no order
        if not latest:
            return
        for key in self._owner_buffer.keys() & latest.keys():
            customer = latest[key]
            self._owner_buffer[key] = _DELETED if customer is None else customer
        for key in self._owner_seen.keys() & latest.keys():
            self._owner_seen[key] = latest[key]
        try:
            with self._store.transaction() as sql:
                sql.executemany(
                    "DELETE FROM owners WHERE key = ?",
                    ((k,) for k, customer in latest.items() if customer is None),
                )
                sql.executemany(
                    "INSERT INTO owners VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET customer = excluded.customer",
                    ((k, customer) for k, customer in latest.items() if customer is not None),
                )
        finally:
            self._owner_stored = None

    @property
    def owner_count(self) -> int:
        """Keys with an owner (``len(owners)``)."""
        if self._owner_stored is None:
            self._owner_stored = int(self._sql.execute("SELECT count(*) FROM owners").fetchone()[0])
        count = self._owner_stored
        for key, customer in self._owner_buffer.items():
            count += (customer is not _DELETED) - (self._stored_owner(key) is not None)
        return count

    def apply_committed(self, key: str, customer: str | None, own: bool) -> bool:
        """A committed ownership record read back from the topic, in log order; not undoable.

        Our own writes are already in memory when they are read back; applying one would briefly undo a
        newer write of ours, so an own record is applied only when it is the last of ours on that key
        (which makes memory converge to the log when another instance wrote in between). Returns whether
        the record was applied.
        """
        if own:
            left = self._unseen.get(key, 0) - 1
            if left > 0:
                self._unseen[key] = left
                return False
            self._unseen.pop(key, None)
        if self.owner(key) != customer:
            # Into the buffer without an undo entry: written to the file with the next commit.
            self._owner_buffer[key] = _DELETED if customer is None else customer
        return True

    # --- waiting claimants --------------------------------------------------------------------

    def wait(self, owner_key: str, customer_key: str, waiter: Waiter) -> None:
        """Remember ``waiter`` for ``owner_key`` (undoable, like every change made while handling)."""
        self._set(self._waiting.setdefault(owner_key, {}), customer_key, waiter)
        self._set(self._waits_for, customer_key, self._waits_for.get(customer_key, frozenset()) | {owner_key})

    def stop_waiting(self, customer_key: str) -> None:
        """Forget every wait of a customer (it changed; its new row decides again)."""
        owner_keys = self._waits_for.get(customer_key)
        if not owner_keys:
            return
        self._set(self._waits_for, customer_key, _MISSING)
        for owner_key in owner_keys:
            waiters = self._waiting.get(owner_key)
            if waiters is not None and customer_key in waiters:
                self._set(waiters, customer_key, _MISSING)

    def next_waiter(self, owner_key: str) -> tuple[str, Waiter] | None:
        """The first customer waiting for ``owner_key`` whose partition is still ours."""
        waiters = self._waiting.get(owner_key)
        if not waiters:
            return None
        for customer_key, waiter in waiters.items():
            if waiter.partition in self._member_buffer:
                return customer_key, waiter
        return None

    @property
    def waiting_count(self) -> int:
        return len(self._waits_for)
