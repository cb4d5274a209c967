"""Deciding what changed: row normalising and hashing, and the diff against the last seen hashes.

A row is normalised before it is hashed so that only a real change of data changes the hash: strings are
trimmed (SYSPRO's ``char(n)`` columns arrive space-padded), integral floats become ints (``100.0`` and
``100`` are one decimal), OData annotations are dropped, and row-version columns are left out (a
``TimeStamp`` moves on every UPDATE, even one that changes nothing; it travels separately as the
snapshot's ``source_version``). ``row_hash`` is the digest of exactly the normalised ``row`` that is
published, so anyone can recompute it.

The poller remembers one 16-byte digest per customer, not the row: at a million customers that is the
difference between about 160 MB and several GB. The price is that an update cannot say which columns
changed (``changed_columns`` stays empty). Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from shared.events import RowValue

__all__ = [
    "EMPTY_ROW_DIGEST",
    "ChangeKind",
    "FullScanTracker",
    "InvalidRow",
    "KnownHashes",
    "ObservedRow",
    "RowChange",
    "deletions",
    "diff_rows",
    "normalise_row",
    "normalise_value",
    "observe_row",
    "row_digest",
]

ChangeKind = Literal["created", "updated", "deleted"]
MAX_CUSTOMER_LENGTH = 64


class InvalidRow(ValueError):
    """A row without a usable key: it cannot be tracked, so it is reported rather than guessed at."""


def normalise_value(value: object) -> RowValue:
    """One column value in its canonical form (see the module docstring)."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    # Not produced by OData JSON for ArCustomer columns; kept as canonical JSON text rather than dropped.
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def normalise_row(raw: Mapping[str, object], exclude: Collection[str] = ()) -> dict[str, RowValue]:
    """The after-image of a row: every column except annotations and ``exclude``, normalised."""
    return {
        name: normalise_value(value)
        for name, value in raw.items()
        if not name.startswith("@") and name not in exclude
    }


def row_digest(row: Mapping[str, RowValue]) -> bytes:
    """16-byte BLAKE2b of the row as canonical JSON (keys sorted), independent of column order."""
    return hashlib.blake2b(orjson.dumps(row, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


EMPTY_ROW_DIGEST = row_digest({})
"""The digest of a deleted customer's (empty) row."""


@dataclass(frozen=True, slots=True)
class ObservedRow:
    """A row as read in this run, normalised and hashed."""

    customer: str
    row: dict[str, RowValue]
    digest: bytes
    source_version: str | None


def observe_row(
    raw: Mapping[str, object],
    key_column: str = "Customer",
    exclude: Collection[str] = (),
    version_column: str | None = "TimeStamp",
) -> ObservedRow:
    """Normalise and hash one OData row; ``InvalidRow`` when its key is missing or unusable."""
    key = raw.get(key_column)
    if not isinstance(key, str) or not key.strip():
        raise InvalidRow(f"row without a {key_column} code")
    customer = key.strip()
    if len(customer) > MAX_CUSTOMER_LENGTH:
        raise InvalidRow(f"{key_column} code longer than {MAX_CUSTOMER_LENGTH} characters")
    row = normalise_row(raw, exclude)
    version = raw.get(version_column) if version_column else None
    return ObservedRow(customer, row, row_digest(row), version if isinstance(version, str) else None)


@dataclass(frozen=True, slots=True)
class RowChange:
    """A change to publish: the event's content and the snapshot entry that goes with it."""

    customer: str
    change: ChangeKind
    row: dict[str, RowValue]
    digest: bytes
    source_version: str | None = None

    @property
    def row_hash(self) -> str:
        return self.digest.hex()


class KnownHashes:
    """The last published digest of every customer of one connection, plus a full-scan mark.

    Each entry is one 18-byte ``bytes``: the 16-byte digest, then 2 bytes saying which full scan last
    read the customer. Marking in place instead of keeping a set of unseen customers means a full scan
    over a million customers costs no extra memory (18 and 16 bytes fall in the same allocation size).
    A scan that fails half-way leaves older marks behind; the next scan takes a new mark, so they only
    matter if 65,535 scans in a row fail.
    """

    __slots__ = ("_entries", "_mark")

    def __init__(self, digests: dict[str, bytes] | None = None) -> None:
        self._mark = b"\x00\x00"
        self._entries: dict[str, bytes] = {}
        for customer, digest in (digests or {}).items():
            self.set(customer, digest)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, customer: object) -> bool:
        return customer in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def get(self, customer: str) -> bytes | None:
        """The customer's last published digest (16 bytes), or ``None`` when unknown."""
        entry = self._entries.get(customer)
        return None if entry is None else entry[:16]

    def set(self, customer: str, digest: bytes) -> None:
        if len(digest) != 16:
            raise ValueError("a digest is 16 bytes")
        self._entries[customer] = digest + self._mark

    def discard(self, customer: str) -> None:
        self._entries.pop(customer, None)

    def apply(self, changes: Iterable[RowChange]) -> None:
        """Make published changes the known state (call only once they are committed)."""
        entries, mark = self._entries, self._mark
        for change in changes:
            if change.change == "deleted":
                entries.pop(change.customer, None)
            else:
                entries[change.customer] = change.digest + mark

    # ----- full scans --------------------------------------------------------------------------------

    def begin_scan(self) -> None:
        """Start a full scan: from now on every customer counts as unread until ``mark_read``."""
        value = int.from_bytes(self._mark, "big") % 0xFFFF + 1
        self._mark = value.to_bytes(2, "big")

    def mark_read(self, customer: str) -> None:
        entries, mark = self._entries, self._mark
        entry = entries.get(customer)
        if entry is not None and entry[16:] != mark:
            entries[customer] = entry[:16] + mark

    def unread(self) -> list[str]:
        """Known customers the current full scan has not read, sorted."""
        mark = self._mark
        return sorted(c for c, entry in self._entries.items() if entry[16:] != mark)


def diff_rows(known: KnownHashes, rows: Iterable[ObservedRow]) -> list[RowChange]:
    """The rows whose digest differs from the known one; unchanged rows give nothing.

    ``known`` is not modified. A customer read twice in one batch counts once, with its last image.
    """
    latest: dict[str, ObservedRow] = {}
    for row in rows:
        latest[row.customer] = row
    changes: list[RowChange] = []
    for customer, row in latest.items():
        previous = known.get(customer)
        if previous == row.digest:
            continue
        kind: ChangeKind = "created" if previous is None else "updated"
        changes.append(RowChange(customer, kind, row.row, row.digest, row.source_version))
    return changes


def deletions(known: KnownHashes, customers: Iterable[str]) -> list[RowChange]:
    """``deleted`` changes for the given customers that are known (unknown ones need no event)."""
    return [RowChange(c, "deleted", {}, EMPTY_ROW_DIGEST) for c in customers if c in known]


class FullScanTracker:
    """Which known customers a full scan has not read (yet): the candidates for deletion.

    Customers that become known during the scan (created by it) are never candidates.
    """

    __slots__ = ("_known",)

    def __init__(self, known: KnownHashes) -> None:
        self._known = known
        known.begin_scan()

    def seen(self, customer: str) -> None:
        self._known.mark_read(customer)

    def candidates(self) -> list[str]:
        return self._known.unread()
