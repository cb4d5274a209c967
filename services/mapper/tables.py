"""The mapper's in-memory state: member states of its partitions, the global email-ownership table,
and the customers waiting for an address another customer owns.

The durable copies are compacted topics written in the same Kafka transaction as the commands. The
in-memory copies are changed while a batch is handled, before that transaction commits, so every change
goes through an undo log: ``rollback`` restores the memory when the transaction aborts (the batch is then
re-run against the same state it first saw), ``savepoint``/``rollback_to`` undo a single handler call
that raised (the processor then re-runs that batch one record at a time), ``commit`` forgets the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.mapper.records import CustomerMemory
from shared.events import RowValue

__all__ = ["MapperTables", "Waiter"]

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Waiter:
    """A customer rejected because another customer owns its address, with the row to retry with."""

    partition: int
    connection_id: str
    customer: str
    row: dict[str, RowValue]


class MapperTables:
    def __init__(self, track_own_writes: bool = False) -> None:
        #: partition -> customer key (``connection:customer``) -> state.
        self.members: dict[int, dict[str, CustomerMemory]] = {}
        #: ``connection:audience:hash`` -> owning customer.
        self.owners: dict[str, str] = {}
        #: ``connection:audience:hash`` -> customer key -> waiter, in arrival order (first come first served).
        self._waiting: dict[str, dict[str, Waiter]] = {}
        self._waits_for: dict[str, frozenset[str]] = {}
        self._undo: list[tuple[dict[Any, Any], Any, Any]] = []
        #: Own ownership writes not yet seen back on the topic, per key (only when the topic is tailed).
        self._track = track_own_writes
        self._unseen: dict[str, int] = {}

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
        self._undo.clear()
        # Empty waiter lists are dropped only now: the undo log may still have pointed into them.
        for owner_key in [k for k, waiters in self._waiting.items() if not waiters]:
            del self._waiting[owner_key]

    # --- member states ------------------------------------------------------------------------

    def member(self, partition: int, key: str) -> CustomerMemory | None:
        part = self.members.get(partition)
        return part.get(key) if part is not None else None

    def put_member(self, partition: int, key: str, memory: CustomerMemory) -> None:
        self._set(self.members.setdefault(partition, {}), key, memory)

    def load_partition(self, partition: int, states: dict[str, CustomerMemory]) -> None:
        self.members[partition] = states

    def drop_partition(self, partition: int) -> None:
        """Forget a partition that moved to another instance (between transactions: not undoable)."""
        self.members.pop(partition, None)
        moved = {
            c for waiters in self._waiting.values() for c, w in waiters.items() if w.partition == partition
        }
        mark = self.savepoint()
        for customer_key in moved:
            self.stop_waiting(customer_key)
        del self._undo[mark:]

    @property
    def member_count(self) -> int:
        return sum(len(p) for p in self.members.values())

    # --- ownership ----------------------------------------------------------------------------

    def owner(self, key: str) -> str | None:
        return self.owners.get(key)

    def claim(self, key: str, customer: str) -> None:
        self._set(self.owners, key, customer)
        if self._track:
            self._set(self._unseen, key, self._unseen.get(key, 0) + 1)

    def release(self, key: str) -> None:
        self._set(self.owners, key, _MISSING)
        if self._track:
            self._set(self._unseen, key, self._unseen.get(key, 0) + 1)

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
        if customer is None:
            self.owners.pop(key, None)
        else:
            self.owners[key] = customer
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
            if waiter.partition in self.members:
                return customer_key, waiter
        return None

    @property
    def waiting_count(self) -> int:
        return len(self._waits_for)
