"""OData query text: values can never change a query's meaning (checked against an independent parser)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.poller.odata_query import (
    any_of,
    binary_literal,
    check_identifier,
    date_literal,
    datetime_literal,
    encode_query,
    number_literal,
    string_literal,
)
from simulators.syspro.odata_syntax import Binary, Compare, Literal, Logical, Property, parse_filter

NASTY = [
    "O'BRIEN",
    "' or 'a' eq 'a",
    "x') or (1 eq 1",
    "A&$top=1",
    "50%25",
    "A+B",
    "#1",
    "ÄÖÜ-ß",
    "''",
    "a b",
]


def test_single_quotes_are_doubled_inside_string_literals() -> None:
    assert string_literal("O'Brien") == "'O''Brien'"
    assert string_literal("''") == "''''''"


@pytest.mark.parametrize("code", NASTY)
def test_a_customer_code_stays_one_string_literal_whatever_it_contains(code: str) -> None:
    node = parse_filter(any_of("Customer", [code]))
    assert node == Compare("eq", Property("Customer"), Literal("string", code))


@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4))
def test_any_text_round_trips_through_any_of(codes: list[str]) -> None:
    node = parse_filter(any_of("Customer", codes))
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Logical):
            assert current.op == "or"
            stack.extend([current.right, current.left])
        else:
            assert isinstance(current, Compare) and current.left == Property("Customer")
            assert isinstance(current.right, Literal) and current.right.kind == "string"
            found.append(current.right.value)
    assert found == codes


@given(st.text(max_size=40))
def test_the_query_string_decodes_back_to_exactly_the_values(value: str) -> None:
    query = encode_query([("$filter", value), ("$top", "5")])
    assert " " not in query and "#" not in query and "+" not in query.split("&")[0].split("=", 1)[1]
    assert parse_qsl(query, keep_blank_values=True) == [("$filter", value), ("$top", "5")]


def test_query_option_names_keep_their_dollar_sign() -> None:
    assert encode_query([("$select", "Customer,Email")]) == "$select=Customer%2CEmail"


def test_column_names_must_be_plain_identifiers() -> None:
    assert check_identifier("TimeStamp") == "TimeStamp"
    for bad in ("Customer eq 'x'", "a,b", "", "1abc", "Name)"):
        with pytest.raises(ValueError):
            check_identifier(bad)
    with pytest.raises(ValueError):
        any_of("Customer or 1 eq 1", ["x"])
    with pytest.raises(ValueError):
        any_of("Customer", [])


def test_typed_literals_parse_as_their_types() -> None:
    assert parse_filter(f"TimeStamp gt {binary_literal(bytes([0, 0, 0, 0, 0, 1, 0xFB, 0xFF]))}") == Compare(
        "gt", Property("TimeStamp"), Literal("binary", Binary(bytes([0, 0, 0, 0, 0, 1, 0xFB, 0xFF])))
    )
    plus_two = timezone(timedelta(hours=2))
    assert datetime_literal(datetime(2024, 1, 1, 2, 0, tzinfo=plus_two)) == "2024-01-01T00:00:00Z"
    assert datetime_literal(datetime(2024, 1, 1, 0, 0, 0, 500, tzinfo=UTC)) == "2024-01-01T00:00:00.000500Z"
    assert date_literal(date(2024, 2, 29)) == "2024-02-29"
    assert number_literal(Decimal("12.50")) == "12.50" and number_literal(7) == "7"
    with pytest.raises(ValueError):
        number_literal(Decimal("NaN"))
