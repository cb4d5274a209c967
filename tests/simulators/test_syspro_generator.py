"""The seeded company generator: repeatable, and carrying the data traits a real SYSPRO master has."""

# ruff: noqa: RUF001  (Windows-1252 punctuation in literals is the point of these tests)

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest

from simulators.syspro import generate_company
from simulators.syspro.schema import AR_CUSTOMER

TODAY = date(2025, 6, 15)
VALID = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


@pytest.fixture(scope="module")
def company() -> list[dict[str, Any]]:
    return generate_company(10_000, seed=42, today=TODAY)


def test_same_seed_same_company_other_seed_other_company() -> None:
    assert generate_company(300, seed=1, today=TODAY) == generate_company(300, seed=1, today=TODAY)
    assert generate_company(300, seed=1, today=TODAY) != generate_company(300, seed=2, today=TODAY)


def test_codes_are_zero_padded_six_digits_and_unique(company: list[dict[str, Any]]) -> None:
    codes = [row["Customer"] for row in company]
    assert codes[:3] == ["000001", "000002", "000003"]
    assert all(re.fullmatch(r"\d{6}", code) for code in codes)
    assert len(set(codes)) == len(codes)


def test_every_value_fits_its_sql_column(company: list[dict[str, Any]]) -> None:
    columns = [c for c in AR_CUSTOMER.columns if c.name != "TimeStamp"]
    for row in company:
        assert list(row) == [c.name for c in columns]
        for column in columns:
            value = row[column.name]
            if column.kind == "string":
                assert isinstance(value, str)
                assert len(value) == column.length if column.padded else len(value) <= column.length
                value.encode("cp1252")  # non-Unicode varchar: every character must exist in Windows-1252
            elif column.kind == "decimal":
                assert isinstance(value, int | float)
            elif column.kind == "datetime" and value is not None:
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T00:00:00Z", value)


def test_emails_are_mostly_valid_with_blank_invalid_multiple_and_shared_ones(
    company: list[dict[str, Any]],
) -> None:
    emails = [row["Email"] for row in company]
    n = len(emails)
    valid = sum(bool(VALID.match(e.strip())) for e in emails)
    blank = emails.count("")
    multiple = sum(bool(re.search(r"@.*[;,].*@", e)) for e in emails)
    invalid = n - valid - blank - multiple
    shared = sum(count - 1 for email, count in Counter(e for e in emails if e).items() if count > 1)
    assert 0.80 * n < valid < 0.90 * n
    assert 0.04 * n < blank < 0.08 * n
    assert 0.02 * n < multiple < 0.05 * n
    assert 0.02 * n < invalid < 0.05 * n
    assert shared > 0.01 * n
    assert any(e != e.strip() for e in emails) and any(e != e.lower() for e in emails if "@" in e)
    assert {"n/a", "john@"} & set(emails)


def test_names_carry_accents_and_windows_1252_punctuation(company: list[dict[str, Any]]) -> None:
    text = "".join(row["Name"] + row["Contact"] for row in company)
    for char in "éüøñ’“”–":
        assert char in text, char
    assert any("'" in row["Name"] for row in company)


def test_status_fields_are_spread_like_a_real_ledger(company: list[dict[str, Any]]) -> None:
    n = len(company)
    on_hold = sum(row["CustomerOnHold"] == "Y" for row in company)
    assert 0.03 * n < on_hold < 0.07 * n
    statuses = Counter(row["CreditStatus"] for row in company)
    assert set(statuses) == {"0", "1", "2", "3", "4", "5", "6", "9", " "}
    assert {row["Nationality"] for row in company} == {"USA", "ZAF", "GBR", "CAN", "AUS"}
    assert len({row["Branch"] for row in company}) == 15
    assert 30 <= len({row["Salesperson"] for row in company} - {""}) <= 40


def test_dates_last_sale_in_the_last_three_years_some_null(company: list[dict[str, Any]]) -> None:
    oldest = (TODAY - timedelta(days=3 * 365 + 1)).isoformat()
    sales = [row["DateLastSale"] for row in company]
    assert 0.05 * len(sales) < sales.count(None) < 0.12 * len(sales)
    assert all(s[:10] >= oldest for s in sales if s is not None)
    assert any(row["DateLastPay"] is None for row in company)
    for row in company:
        if row["DateLastSale"] is not None:
            assert row["DateCustAdded"] <= row["DateLastSale"]


def test_addresses_are_sometimes_partial(company: list[dict[str, Any]]) -> None:
    assert any(row["SoldToAddr1"] == "" for row in company)
    assert any(row["SoldPostalCode"] == "" and row["SoldToAddr1"] for row in company)
    assert any(row["SoldToAddr5"] == "" for row in company)
    assert any(row["ShipToAddr1"] == "" for row in company)
    assert any(row["SoldToAddr1"].endswith(" ") for row in company)
    assert all(row["State"] == "  " for row in company if row["Nationality"] != "USA")
