"""``$filter`` and ``$orderby`` of the simulated OData service: literals, quoting, injection, errors."""

# ruff: noqa: RUF001  (Windows-1252 punctuation in literals is the point of these tests)

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.syspro import SysproSimConfig, SysproSimulator
from simulators.syspro.odata_syntax import Binary, Compare, Literal, Logical, Not, Property, parse_filter
from simulators.syspro.odata_syntax import SyntaxProblem as FilterSyntaxError
from simulators.syspro.testing import RunningSyspro, running_syspro

CUSTOMERS: list[dict[str, Any]] = [
    {
        "Customer": "C1",
        "Name": "O'Brien",
        "Email": "a@x.example",
        "CreditLimit": 1000,
        "DateLastSale": "2024-01-01",
        "Nationality": "USA",
    },
    {
        "Customer": "C2",
        "Name": "O’Connor Outdoor",
        "Email": "",
        "CreditLimit": 5000,
        "DateLastSale": "2024-06-30",
        "Nationality": "GBR",
    },
    {
        "Customer": "C3",
        "Name": "Müller Sørensen",
        "Email": "b@y.example",
        "CreditLimit": 0,
        "DateLastSale": None,
        "Nationality": "ZAF",
    },
    {
        "Customer": "C4",
        "Name": "' or 1 eq 1",
        "Email": "c@z.example",
        "CreditLimit": 250,
        "DateLastSale": "2023-03-15",
        "Nationality": "usa",
    },
    {
        "Customer": "C5",
        "Name": "Peña “Best” – Gear",
        "Email": "d@w.example",
        "CreditLimit": 99999,
        "DateLastSale": "2025-12-31",
        "Nationality": "CAN",
    },
]


@pytest.fixture(scope="module")
def syspro() -> Iterator[RunningSyspro]:
    sim = SysproSimulator()
    for row in CUSTOMERS:
        sim.create(row)
    with running_syspro(sim=sim) as running:
        yield running


_HTTP = httpx.Client(timeout=30)  # one client: building an SSL context per request costs ~50 ms


def codes(s: RunningSyspro, filter_: str, orderby: str | None = None) -> list[str]:
    params = {"$filter": filter_, "$select": "Customer"}
    if orderby:
        params["$orderby"] = orderby
    response = _HTTP.get(f"{s.odata_url}/ArCustomer", params=params, auth=s.odata_auth)
    assert response.status_code == 200, response.text
    return [row["Customer"] for row in response.json()["value"]]


def odata_literal(text: str) -> str:
    """How a careful client quotes a string: single quotes doubled."""
    return "'" + text.replace("'", "''") + "'"


def test_doubled_quote_matches_a_name_with_an_apostrophe(syspro: RunningSyspro) -> None:
    assert codes(syspro, f"Name eq {odata_literal(chr(39).join(['O', 'Brien']))}") == ["C1"]


def test_injection_text_inside_a_quoted_literal_is_only_data(syspro: RunningSyspro) -> None:
    assert codes(syspro, f"Name eq {odata_literal(chr(39) + ' or 1 eq 1')}") == ["C4"]
    assert codes(syspro, f"Name eq {odata_literal('x')} and Customer ne 'C1'") == []


def test_unescaped_quote_is_a_400_not_a_wider_query(syspro: RunningSyspro) -> None:
    response = _HTTP.get(
        f"{syspro.odata_url}/ArCustomer", auth=syspro.odata_auth, params={"$filter": "Name eq 'O'Brien'"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["message"]


def test_non_ascii_and_cp1252_characters_compare_exactly(syspro: RunningSyspro) -> None:
    assert codes(syspro, "Name eq 'Müller Sørensen'") == ["C3"]
    assert codes(syspro, "Name eq 'Peña “Best” – Gear'") == ["C5"]
    assert codes(syspro, "startswith(Name,'O’')") == ["C2"]


def test_string_equality_ignores_case_and_trailing_spaces_like_sql_server(syspro: RunningSyspro) -> None:
    assert codes(syspro, "Nationality eq 'USA'") == ["C1", "C4"]
    assert codes(syspro, "Name eq 'o''brien   '") == ["C1"]


def test_binary_collation_switch_makes_comparisons_case_sensitive() -> None:
    sim = SysproSimulator(SysproSimConfig(case_insensitive_collation=False))
    for row in CUSTOMERS:
        sim.create(row)
    with running_syspro(sim=sim) as s:
        assert codes(s, "Nationality eq 'USA'") == ["C1"]


def test_comparisons_on_numbers_dates_and_null(syspro: RunningSyspro) -> None:
    assert codes(syspro, "CreditLimit ge 1000") == ["C1", "C2", "C5"]
    assert codes(syspro, "CreditLimit lt 1000 and CreditLimit gt 0") == ["C4"]
    assert codes(syspro, "DateLastSale ge 2024-01-01T00:00:00Z") == ["C1", "C2", "C5"]
    assert codes(syspro, "DateLastSale lt 2024-06-30T02:00:00+02:00") == ["C1", "C4"]
    assert codes(syspro, "DateLastSale eq null") == ["C3"]
    assert codes(syspro, "DateLastSale ne null") == ["C1", "C2", "C4", "C5"]
    assert codes(syspro, "DateLastSale ne 2024-01-01T00:00:00Z") == ["C2", "C3", "C4", "C5"]
    assert codes(syspro, "Email eq ''") == ["C2"]


def test_and_binds_tighter_than_or_and_parentheses_override(syspro: RunningSyspro) -> None:
    assert codes(syspro, "Customer eq 'C1' or Customer eq 'C2' and CreditLimit gt 9999") == ["C1"]
    assert codes(syspro, "(Customer eq 'C1' or Customer eq 'C2') and CreditLimit gt 1000") == ["C2"]
    assert codes(syspro, "not (CreditLimit gt 500)") == ["C3", "C4"]


def test_string_functions(syspro: RunningSyspro) -> None:
    assert codes(syspro, "contains(Email,'EXAMPLE')") == ["C1", "C3", "C4", "C5"]
    assert codes(syspro, "endswith(Name,'gear')") == ["C5"]
    assert codes(syspro, "tolower(Nationality) eq 'usa'") == ["C1", "C4"]


def test_orderby_several_keys_and_directions_ties_broken_by_key(syspro: RunningSyspro) -> None:
    assert codes(syspro, "Customer ne ''", "CreditLimit desc") == ["C5", "C2", "C1", "C4", "C3"]
    assert codes(syspro, "Customer ne ''", "Nationality,Customer desc") == ["C5", "C2", "C4", "C1", "C3"]
    assert codes(syspro, "Customer ne ''", "DateLastSale") == ["C3", "C4", "C1", "C2", "C5"]


def test_timestamp_accepts_base64_and_base64url_binary_literals() -> None:
    sim = SysproSimulator()
    for row in CUSTOMERS:
        sim.create(row)
    sim.update("C2", Email="x@y.example")
    stamp = int.from_bytes(base64.b64decode(sim.get("C2")["TimeStamp"]), "big")  # type: ignore[index]
    below = (stamp - 1).to_bytes(8, "big")
    # 0x00000000FFFFFFFF spells differently in the two alphabets: 'AAAAAP////8=' and 'AAAAAP____8='.
    high = (0xFFFFFFFF).to_bytes(8, "big")
    with running_syspro(sim=sim) as s:
        assert codes(s, f"TimeStamp gt binary'{base64.b64encode(below).decode()}'") == ["C2"]
        assert codes(s, f"TimeStamp gt X'{below.hex()}'") == ["C2"]
        assert codes(s, f"TimeStamp lt binary'{base64.b64encode(high).decode()}'") == [
            "C1",
            "C2",
            "C3",
            "C4",
            "C5",
        ]
        assert codes(s, f"TimeStamp lt binary'{base64.urlsafe_b64encode(high).decode().rstrip('=')}'") == [
            "C1",
            "C2",
            "C3",
            "C4",
            "C5",
        ]
        assert codes(s, f"TimeStamp ge binary'{base64.urlsafe_b64encode(high).decode()}'") == []


@pytest.mark.parametrize(
    "bad",
    [
        "Name eq",
        "Name eq 'x' and",
        "(Name eq 'x'",
        "Name = 'x'",
        "Name eq 'x' ; drop table ArCustomer",
        "Name eq 'x' or 1 eq 1'",
        "Nope eq 1",
        "Name eq 5",
        "CreditLimit eq 'big'",
        "DateLastSale gt 2024-13-45",
        "frobnicate(Name)",
        "Name",
        "TimeStamp gt binary'!!notbase64'",
    ],
)
def test_bad_filters_are_400_with_an_odata_json_error(syspro: RunningSyspro, bad: str) -> None:
    response = _HTTP.get(f"{syspro.odata_url}/ArCustomer", params={"$filter": bad}, auth=syspro.odata_auth)
    assert response.status_code == 400, bad
    error = response.json()["error"]
    assert isinstance(error["code"], str) and error["message"]


def test_parser_builds_the_expected_tree() -> None:
    tree = parse_filter("not (A eq 'it''s') or B gt 2 and C le binary'AAE='")
    assert tree == Logical(
        "or",
        Not(Compare("eq", Property("A"), Literal("string", "it's"))),
        Logical(
            "and",
            Compare("gt", Property("B"), Literal("number", 2)),
            Compare("le", Property("C"), Literal("binary", Binary(b"\x00\x01"))),
        ),
    )


def test_parser_reports_the_position_of_an_unterminated_string() -> None:
    with pytest.raises(FilterSyntaxError, match="position 8"):
        parse_filter("Name eq 'abc")
