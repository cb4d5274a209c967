"""The simulated company database: ``ArCustomer`` rows, the rowversion counter and the amendment journal.

Rows are immutable tuples in ``AR_CUSTOMER`` column order; an update replaces the tuple. Keys are kept in
collation order in a plain list (bisect on insert and delete), so paging in key order never sorts. Every
mutation bumps ``version``, which is what query caches are tied to.

SQL Server semantics that matter to a client are kept: the primary key compares case-insensitively (with the
default ``_CI_`` collation) and ignoring trailing spaces, text columns are non-Unicode (characters outside
Windows-1252 become ``?``), ``char(n)`` is space-padded, a too-long value is refused rather than cut, and
every insert or update takes the next database-wide rowversion whether or not a value changed.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from math import gcd
from typing import Any

from simulators.syspro.schema import AR_AMENDMENT_JNL, AR_CUSTOMER, Column, EntitySchema, format_datetime

__all__ = ["CustomerStore", "DuplicateKey", "JournalTable", "RowNotFound", "StoreError"]

_FIRST_ROWVERSION = 100_000


class StoreError(ValueError):
    """A write SQL Server would refuse (bad type, too long, unknown column)."""


class DuplicateKey(StoreError):
    """The key already exists under the table's collation."""


class RowNotFound(KeyError):
    """No row with that key."""


def coerce_value(column: Column, value: Any) -> Any:
    """Convert an input value to what the column stores, or raise ``StoreError``."""
    if column.kind == "string":
        if not isinstance(value, str):
            raise StoreError(f"{column.name}: expected a string")
        value = value.encode("cp1252", errors="replace").decode("cp1252")
        if len(value.rstrip(" ") if column.padded else value) > column.length:
            raise StoreError(f"{column.name}: String or binary data would be truncated (max {column.length})")
        return value.ljust(column.length) if column.padded else value
    if column.kind in ("decimal", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StoreError(f"{column.name}: expected a number")
        if column.kind == "int" or column.scale == 0:
            return round(value)
        return round(float(value), column.scale)
    if column.kind == "datetime":
        if value is None:
            if not column.nullable:
                raise StoreError(f"{column.name}: cannot be null")
            return None
        return _coerce_datetime(column.name, value)
    raise StoreError(f"{column.name}: is maintained by the database")


def _coerce_datetime(name: str, value: Any) -> str:
    if isinstance(value, datetime | date):
        return format_datetime(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return format_datetime(date.fromisoformat(text))
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise StoreError(f"{name}: not a date or datetime: {value!r}") from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return format_datetime(parsed)
    raise StoreError(f"{name}: expected a date or datetime")


def collation_key_function(case_insensitive: bool) -> Callable[[str], str]:
    """How SQL Server compares keys: trailing spaces never count; case does not count under ``_CI_``.

    Returns the original object when normalising changes nothing, so a million keys cost no extra strings.
    """
    if case_insensitive:

        def ci(key: str) -> str:
            stripped = key.rstrip(" ")
            folded = stripped.casefold()
            return stripped if folded == stripped else folded

        return ci
    return lambda key: key.rstrip(" ")


class JournalTable:
    """``ArAmendmentJnl``: append-only, one row per added/deleted customer and per changed column."""

    schema: EntitySchema = AR_AMENDMENT_JNL

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self.rows: list[tuple[Any, ...]] = []
        self.version = 0

    def ordered_slice(self, start: int, stop: int) -> list[tuple[Any, ...]]:
        return self.rows[start:stop]

    def iter_ordered(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


class CustomerStore:
    """``ArCustomer`` plus the journal, guarded by one lock shared with the query engine."""

    schema: EntitySchema = AR_CUSTOMER

    def __init__(
        self,
        case_insensitive: bool = True,
        journalling: Callable[[], bool] = lambda: False,  # asked on every write: a run-time switch
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        self.lock = threading.RLock()
        self.journalling = journalling
        self.journal = JournalTable(self.lock)
        self.version = 0
        self._norm = collation_key_function(case_insensitive)
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._keys: list[str] = []
        self._rowversion = _FIRST_ROWVERSION
        self._today = today
        self._now = now
        self._key_i = self.schema.key_index
        self._ts_i = self.schema.index["TimeStamp"]

    # ----- reads -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: str) -> tuple[Any, ...] | None:
        return self._rows.get(self._norm(key))

    def ordered_slice(self, start: int, stop: int) -> list[tuple[Any, ...]]:
        """Rows ``start:stop`` in primary-key order."""
        rows = self._rows
        with self.lock:
            return [rows[k] for k in self._keys[start:stop]]

    def iter_ordered(self) -> Iterator[tuple[Any, ...]]:
        rows = self._rows
        for k in list(self._keys):
            row = rows.get(k)
            if row is not None:
                yield row

    @property
    def last_rowversion(self) -> int:
        return self._rowversion

    # ----- writes ------------------------------------------------------------------------------------

    def _next_rowversion(self) -> int:
        self._rowversion += 1
        return self._rowversion

    def load(self, rows: Iterable[tuple[Any, ...]], count: int) -> int:
        """Replace the table with ``count`` trusted generated rows (column order, no ``TimeStamp``).

        Rowversions are handed out in a scrambled order, as on a real database where the last update of
        each row happened at a different time, unrelated to the customer code.
        """
        with self.lock:
            stride = _coprime_stride(count)
            first = self._rowversion + 1
            key_i = self._key_i
            modulus = max(count, 1)
            table: dict[str, tuple[Any, ...]] = {}
            for i, row in enumerate(rows):
                # Generated codes are digits only, already in collation-normal form.
                table[row[key_i]] = (*row, first + (i * stride) % modulus)
            if len(table) != count:
                raise ValueError(f"load: expected {count} distinct rows, got {len(table)}")
            self._rows = table
            self._keys = sorted(table)
            self._rowversion = first - 1 + count
            self.journal = JournalTable(self.lock)
            self.version += 1
            return count

    def create(self, values: dict[str, Any], operator: str = "ADMIN") -> tuple[Any, ...]:
        """Insert a customer; unset columns get SQL Server's blanks and ``DateCustAdded`` today."""
        schema = self.schema
        unknown = set(values) - set(schema.names)
        if unknown:
            raise StoreError(f"Invalid column name(s): {', '.join(sorted(unknown))}")
        if "TimeStamp" in values:
            raise StoreError("TimeStamp: Cannot insert an explicit value into a timestamp column")
        code = values.get(schema.key)
        if not isinstance(code, str) or not code.strip():
            raise StoreError("Customer: a non-blank customer code is required")
        row: list[Any] = []
        for column in schema.columns[:-1]:
            if column.name in values:
                row.append(coerce_value(column, values[column.name]))
            elif column.name == "DateCustAdded":
                row.append(format_datetime(self._today()))
            else:
                row.append(column.blank)
        with self.lock:
            key = self._norm(row[self._key_i])
            if key in self._rows:
                raise DuplicateKey(f"Violation of PRIMARY KEY constraint: duplicate key ({row[self._key_i]})")
            stored = (*row, self._next_rowversion())
            self._rows[key] = stored
            bisect.insort(self._keys, key)
            self._journal(stored[self._key_i], "A", [("", "")], operator)
            self.version += 1
            return stored

    def update(self, key: str, changes: dict[str, Any], operator: str = "ADMIN") -> tuple[Any, ...]:
        """Change columns of one customer; the row always takes a new rowversion, as an UPDATE does."""
        schema = self.schema
        unknown = set(changes) - set(schema.names)
        if unknown:
            raise StoreError(f"Invalid column name(s): {', '.join(sorted(unknown))}")
        if schema.key in changes:
            raise StoreError("Customer: the key cannot be changed by an update")
        if "TimeStamp" in changes:
            raise StoreError("TimeStamp: Cannot update a timestamp column")
        coerced = {schema.index[name]: coerce_value(schema.column(name), v) for name, v in changes.items()}
        with self.lock:
            norm = self._norm(key)
            old = self._rows.get(norm)
            if old is None:
                raise RowNotFound(key)
            new = list(old)
            for i, v in coerced.items():
                new[i] = v
            new[self._ts_i] = self._next_rowversion()
            stored = tuple(new)
            self._rows[norm] = stored
            changed = [(schema.names[i], _as_text(old[i])) for i in sorted(coerced) if old[i] != stored[i]]
            self._journal(old[self._key_i], "U", changed, operator)
            self.version += 1
            return stored

    def delete(self, key: str, operator: str = "ADMIN") -> tuple[Any, ...]:
        with self.lock:
            norm = self._norm(key)
            old = self._rows.pop(norm, None)
            if old is None:
                raise RowNotFound(key)
            i = bisect.bisect_left(self._keys, norm)
            del self._keys[i]
            self._journal(old[self._key_i], "X", [("", "")], operator)
            self.version += 1
            return old

    def _journal(self, customer: str, flag: str, changes: list[tuple[str, str]], operator: str) -> None:
        if not self.journalling():
            return
        now = self._now()
        jnl_date = format_datetime(now.date())
        jnl_time = int(now.strftime("%H%M%S")) * 100 + now.microsecond // 10_000
        journal = self.journal
        for column_name, before in changes:
            entry = len(journal.rows) + 1
            journal.rows.append(
                (
                    entry,
                    jnl_date,
                    jnl_time,
                    customer,
                    flag,
                    column_name,
                    before[:255],
                    operator[:20],
                    self._next_rowversion(),
                )
            )
        journal.version += 1


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _coprime_stride(n: int) -> int:
    """A stride that visits every residue mod ``n`` once: a cheap permutation without shuffling."""
    stride = 7_368_787
    while n > 1 and gcd(stride, n) != 1:
        stride += 2
    return stride
