"""The cursor strategy's watermark: a value object that rows are observed into and then closed.

A ``CursorWindow`` is made from the checkpointed cursor at the start of a run. It says which rows to read
(``filter_after``: everything at or after the cursor minus the overlap, continued page by page from the
last row read) and in which order (``orderby``: cursor column, then key). Each row's cursor value is
observed into it; ``close`` gives the cursor to checkpoint when the run completes.

Paging is by key set, not ``$skip``: the next page asks for rows strictly after the last one read in
(cursor, Customer) order, so rows that share a cursor value (date-only columns share it by the thousand)
are never skipped, and rows updated while the run is in progress move *ahead* of the reader instead of
shifting an offset under it.

Cursor kinds follow the column's EDM type: ``binary`` (SQL Server ``rowversion``, 8 bytes big-endian,
unique per database, so ``gt`` is exact), ``datetime`` / ``date`` / ``number`` (not unique: the lower
bound is inclusive, re-read rows are diffed against the snapshot and emit nothing). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from services.poller.odata_query import (
    binary_literal,
    check_identifier,
    date_literal,
    datetime_literal,
    number_literal,
    string_literal,
)

__all__ = ["CursorError", "CursorKind", "CursorValue", "CursorWindow", "cursor_kind_for"]

CursorKind = Literal["binary", "datetime", "date", "number"]
CursorScalar = int | datetime | date | Decimal

_EDM_KINDS: dict[str, CursorKind] = {
    "Edm.Binary": "binary",
    "Edm.DateTimeOffset": "datetime",
    "Edm.DateTime": "datetime",
    "Edm.Date": "date",
    "Edm.Int16": "number",
    "Edm.Int32": "number",
    "Edm.Int64": "number",
    "Edm.Decimal": "number",
}


class CursorError(ValueError):
    """A cursor value that cannot be read (wrong type for the column, corrupt checkpoint)."""


def cursor_kind_for(edm_type: str) -> CursorKind:
    """The cursor kind of a column from its ``$metadata`` type; other types cannot be cursors."""
    try:
        return _EDM_KINDS[edm_type]
    except KeyError:
        raise CursorError(
            f"a {edm_type} column cannot be a cursor (binary, date/time or integer needed)"
        ) from None


def _parse_datetime(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class CursorValue:
    """One value of the cursor column, comparable with others of its kind."""

    kind: CursorKind
    value: CursorScalar

    @classmethod
    def from_odata(cls, kind: CursorKind, raw: object) -> CursorValue | None:
        """The cursor value of a row as OData JSON carries it; ``None`` for a null column."""
        if raw is None:
            return None
        try:
            if kind == "binary":
                if not isinstance(raw, str):
                    raise TypeError("binary values are base64 text")
                return cls(kind, int.from_bytes(base64.b64decode(raw, validate=True), "big"))
            if kind == "datetime":
                if not isinstance(raw, str):
                    raise TypeError("datetime values are ISO text")
                return cls(kind, _parse_datetime(raw))
            if kind == "date":
                if not isinstance(raw, str):
                    raise TypeError("date values are ISO text")
                return cls(kind, date.fromisoformat(raw.strip()[:10]))
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise TypeError("number values are numbers")
            return cls(kind, Decimal(str(raw)))
        except (TypeError, ValueError, binascii.Error, InvalidOperation) as exc:
            raise CursorError(f"{kind} cursor value {raw!r} is unreadable: {exc}") from None

    @classmethod
    def minimum(cls, kind: CursorKind) -> CursorValue:
        """A value at or below every real one (used to probe that the server filters on the column)."""
        if kind == "binary":
            return cls(kind, 0)
        if kind == "datetime":
            return cls(kind, datetime(1753, 1, 1, tzinfo=UTC))
        if kind == "date":
            return cls(kind, date(1753, 1, 1))
        return cls(kind, Decimal(0))

    @classmethod
    def decode(cls, kind: CursorKind, text: str) -> CursorValue:
        """Read a checkpointed cursor (the form ``encode`` wrote)."""
        value = cls.from_odata(kind, text)
        if value is None:
            raise CursorError("empty cursor")
        return value

    def encode(self) -> str:
        """The checkpoint form: what OData shows for the column (base64, ISO text, a number)."""
        value = self.value
        if self.kind == "binary":
            assert isinstance(value, int)
            return base64.b64encode(value.to_bytes(8, "big")).decode("ascii")
        if self.kind == "datetime":
            assert isinstance(value, datetime)
            return datetime_literal(value)
        if self.kind == "date":
            assert isinstance(value, date)
            return value.isoformat()
        assert isinstance(value, Decimal)
        return number_literal(value)

    def literal(self) -> str:
        """This value as a ``$filter`` literal."""
        value = self.value
        if self.kind == "binary":
            assert isinstance(value, int)
            return binary_literal(value.to_bytes(8, "big"))
        if self.kind == "datetime":
            assert isinstance(value, datetime)
            return datetime_literal(value)
        if self.kind == "date":
            assert isinstance(value, date) and not isinstance(value, datetime)
            return date_literal(value)
        assert isinstance(value, Decimal)
        return number_literal(value)

    def minus(self, overlap: int) -> CursorValue:
        """The value ``overlap`` units earlier: rowversions or numbers for those kinds, seconds for
        datetimes, whole days (rounded up) for dates."""
        if overlap <= 0:
            return self
        value = self.value
        if self.kind == "binary":
            assert isinstance(value, int)
            return CursorValue(self.kind, max(0, value - overlap))
        if self.kind == "datetime":
            assert isinstance(value, datetime)
            return CursorValue(self.kind, value - timedelta(seconds=overlap))
        if self.kind == "date":
            assert isinstance(value, date)
            return CursorValue(self.kind, value - timedelta(days=-(-overlap // 86_400)))
        assert isinstance(value, Decimal)
        return CursorValue(self.kind, value - overlap)

    def __lt__(self, other: CursorValue) -> bool:
        if other.kind != self.kind:
            raise CursorError(f"cannot compare a {self.kind} cursor with a {other.kind} cursor")
        return self.value < other.value  # type: ignore[operator]


@dataclass
class CursorWindow:
    """One incremental read of ``column`` from the checkpointed ``start``, and what it observed."""

    column: str
    kind: CursorKind
    start: CursorValue | None
    overlap: int = 0
    key_column: str = "Customer"
    _high: CursorValue | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_identifier(self.column)
        check_identifier(self.key_column)
        if self.start is not None and self.start.kind != self.kind:
            raise CursorError(
                f"checkpoint holds a {self.start.kind} cursor, column {self.column} is {self.kind}"
            )

    @property
    def lower_bound(self) -> CursorValue | None:
        return None if self.start is None else self.start.minus(self.overlap)

    def base_filter(self) -> str | None:
        """Rows at or after the lower bound (strictly after, for unique rowversions)."""
        lower = self.lower_bound
        if lower is None:
            return None
        op = "gt" if self.kind == "binary" else "ge"
        return f"{self.column} {op} {lower.literal()}"

    def filter_after(self, last: tuple[CursorValue, str] | None) -> str | None:
        """The ``$filter`` of the next page: the base range, continued after the last row read."""
        base = self.base_filter()
        if last is None:
            return base
        value, customer = last
        if value.kind != self.kind:
            raise CursorError(f"a {value.kind} value cannot continue a {self.kind} cursor")
        lit = value.literal()
        keyset = (
            f"({self.column} gt {lit} or "
            f"({self.column} eq {lit} and {self.key_column} gt {string_literal(customer)}))"
        )
        return keyset if base is None else f"({base}) and {keyset}"

    def orderby(self) -> str:
        return f"{self.column},{self.key_column}"

    def observe(self, value: CursorValue | None) -> None:
        """Note a cursor value that the run has read (or, for a full scan, the table's head)."""
        if value is None:
            return
        if value.kind != self.kind:
            raise CursorError(f"a {value.kind} value cannot be observed into a {self.kind} cursor")
        if self._high is None or self._high < value:
            self._high = value

    @property
    def observed(self) -> CursorValue | None:
        return self._high

    def close(self) -> CursorValue | None:
        """The cursor to checkpoint: never behind where the run started."""
        if self._high is None:
            return self.start
        if self.start is None or self.start < self._high:
            return self._high
        return self.start
