"""The cursor watermark as a value object: observe rows into it, close it (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.poller.watermark import CursorError, CursorValue, CursorWindow, cursor_kind_for


def ts(n: int) -> CursorValue:
    return CursorValue("binary", n)


def test_a_rowversion_reads_from_base64_and_checkpoints_as_it_came() -> None:
    value = CursorValue.from_odata("binary", "AAAAAAAB9Xk=")
    assert value == ts(0x1F579)
    assert value.encode() == "AAAAAAAB9Xk=" and CursorValue.decode("binary", value.encode()) == value
    assert value.literal() == "binary'AAAAAAAB9Xk='"


def test_datetimes_dates_and_numbers_round_trip() -> None:
    moment = CursorValue.from_odata("datetime", "2024-02-29T13:45:00+02:00")
    assert moment == CursorValue("datetime", datetime(2024, 2, 29, 11, 45, tzinfo=UTC))
    assert moment.encode() == moment.literal() == "2024-02-29T11:45:00Z"
    day = CursorValue.from_odata("date", "2024-02-29T00:00:00Z")
    assert day == CursorValue("date", date(2024, 2, 29)) and day.literal() == "2024-02-29"
    assert CursorValue.from_odata("number", 42) == CursorValue("number", Decimal(42))
    assert CursorValue.from_odata("datetime", None) is None


@pytest.mark.parametrize(
    ("kind", "raw"), [("binary", "not base64!"), ("binary", 5), ("datetime", "yesterday"), ("number", True)]
)
def test_unreadable_cursor_values_are_refused(kind: str, raw: object) -> None:
    with pytest.raises(CursorError):
        CursorValue.from_odata(kind, raw)  # type: ignore[arg-type]


def test_the_overlap_moves_the_lower_bound_back_in_the_column_units() -> None:
    assert ts(1000).minus(10) == ts(990) and ts(3).minus(10) == ts(0)
    moment = CursorValue("datetime", datetime(2024, 1, 2, tzinfo=UTC))
    assert moment.minus(3600).value == datetime(2024, 1, 1, 23, tzinfo=UTC)
    assert CursorValue("date", date(2024, 1, 10)).minus(3600).value == date(2024, 1, 9)  # rounded up to a day
    assert CursorValue("date", date(2024, 1, 10)).minus(0).value == date(2024, 1, 10)


def test_rowversions_are_read_strictly_after_and_other_kinds_from_the_bound_inclusive() -> None:
    assert CursorWindow("TimeStamp", "binary", ts(100), overlap=5).base_filter() == (
        "TimeStamp gt binary'AAAAAAAAAF8='"
    )
    window = CursorWindow(
        "DateCustAdded", "datetime", CursorValue("datetime", datetime(2024, 1, 2, tzinfo=UTC))
    )
    assert window.base_filter() == "DateCustAdded ge 2024-01-02T00:00:00Z"
    assert CursorWindow("TimeStamp", "binary", None).base_filter() is None


def test_the_next_page_continues_after_the_last_row_in_cursor_then_key_order() -> None:
    window = CursorWindow("DateCustAdded", "date", CursorValue("date", date(2024, 1, 1)))
    condition = window.filter_after((CursorValue("date", date(2024, 1, 5)), "O'BRIEN"))
    assert condition == (
        "(DateCustAdded ge 2024-01-01) and "
        "(DateCustAdded gt 2024-01-05 or (DateCustAdded eq 2024-01-05 and Customer gt 'O''BRIEN'))"
    )
    assert window.orderby() == "DateCustAdded,Customer"


def test_closing_gives_the_highest_value_seen_and_never_goes_back() -> None:
    window = CursorWindow("TimeStamp", "binary", ts(500))
    assert window.close() == ts(500)
    for n in (510, 505, None, 530, 520):
        window.observe(None if n is None else ts(n))
    assert window.close() == ts(530)
    behind = CursorWindow("TimeStamp", "binary", ts(500))
    behind.observe(ts(400))
    assert behind.close() == ts(500)
    assert CursorWindow("TimeStamp", "binary", None).close() is None


def test_kinds_do_not_mix() -> None:
    with pytest.raises(CursorError):
        CursorWindow("TimeStamp", "binary", CursorValue("date", date(2024, 1, 1)))
    window = CursorWindow("TimeStamp", "binary", ts(1))
    with pytest.raises(CursorError):
        window.observe(CursorValue("number", Decimal(3)))


def test_only_binary_date_time_and_integer_columns_can_be_cursors() -> None:
    assert cursor_kind_for("Edm.Binary") == "binary"
    assert cursor_kind_for("Edm.DateTimeOffset") == "datetime"
    with pytest.raises(CursorError):
        cursor_kind_for("Edm.String")
