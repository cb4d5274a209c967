"""The simulator's ``/_admin`` control API: customers with awkward codes, generation, stats, rotation."""

# ruff: noqa: RUF001  (Windows-1252 punctuation in literals is the point of these tests)

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from simulators.syspro.testing import RunningSyspro, fresh_state, running_syspro

ODD_CODES = ["O'BRIEN", "A/B 12", "MÜLLER", "50% OFF", "X#1?y", "  LEAD", "Ünïcødé–’"]


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSyspro]:
    with running_syspro() as running:
        yield running


@pytest.fixture
def syspro(server: RunningSyspro) -> Iterator[RunningSyspro]:
    with fresh_state(server, customers=20, seed=9) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def customer_url(s: RunningSyspro, code: str) -> str:
    return f"{s.admin_url}/customers/{quote(code, safe='')}"


@pytest.mark.parametrize("code", ODD_CODES)
def test_customers_with_odd_codes_round_trip_through_the_admin_api(
    syspro: RunningSyspro, http: httpx.Client, code: str
) -> None:
    created = http.post(f"{syspro.admin_url}/customers", json={"Customer": code, "Name": "Odd Co"})
    assert created.status_code == 201, created.text
    assert created.json()["Customer"] == code
    assert http.get(customer_url(syspro, code)).json()["Name"] == "Odd Co"
    updated = http.patch(customer_url(syspro, code), json={"Email": "odd@x.example"})
    assert updated.status_code == 200 and updated.json()["Email"] == "odd@x.example"
    odata = http.get(
        f"{syspro.odata_url}/ArCustomer",
        auth=syspro.odata_auth,
        params={"$filter": f"Customer eq '{code.replace(chr(39), chr(39) * 2)}'"},
    ).json()["value"]
    assert [row["Customer"] for row in odata] == [code]
    assert http.delete(customer_url(syspro, code)).status_code == 204
    assert http.get(customer_url(syspro, code)).status_code == 404


def test_duplicate_keys_clash_under_the_case_insensitive_collation(
    syspro: RunningSyspro, http: httpx.Client
) -> None:
    assert http.post(f"{syspro.admin_url}/customers", json={"Customer": "abc"}).status_code == 201
    assert http.post(f"{syspro.admin_url}/customers", json={"Customer": "ABC "}).status_code == 409
    assert http.get(customer_url(syspro, "AbC")).json()["Customer"] == "abc"


def test_writes_sql_server_would_refuse_are_400(syspro: RunningSyspro, http: httpx.Client) -> None:
    url = f"{syspro.admin_url}/customers"
    assert http.post(url, json={"Customer": "T1", "Name": "x" * 51}).status_code == 400
    assert http.post(url, json={"Customer": "T1", "NoSuchColumn": 1}).status_code == 400
    assert http.post(url, json={"Customer": "T1", "TimeStamp": "AAAAAAAAAAE="}).status_code == 400
    assert http.post(url, json={"Customer": "T1", "CreditLimit": "lots"}).status_code == 400
    assert http.post(url, json={"Customer": "T1", "DateLastSale": "yesterday"}).status_code == 400
    assert http.post(url, json={"Name": "no code"}).status_code == 400
    assert http.patch(customer_url(syspro, "000001"), json={"Customer": "000999"}).status_code == 400
    assert http.patch(customer_url(syspro, "NOPE"), json={"Name": "x"}).status_code == 404


def test_char_columns_are_padded_and_text_is_stored_as_windows_1252(
    syspro: RunningSyspro, http: httpx.Client
) -> None:
    row = http.post(
        f"{syspro.admin_url}/customers",
        json={
            "Customer": "PAD",
            "Currency": "$",
            "CustomerOnHold": "Y",
            "Name": "Łódź – Zoë ’s",
            "State": "CA",
            "DateLastSale": "2024-02-29T15:30:00+02:00",
        },
    ).json()
    assert row["Currency"] == "$  " and row["CustomerOnHold"] == "Y" and row["State"] == "CA"
    assert row["LanguageCode"] == "  " and row["TelephoneExtn"] == "     "
    assert row["Name"] == "?ód? – Zoë ’s"  # Ł and ź are not in Windows-1252
    assert row["DateLastSale"] == "2024-02-29T13:30:00Z"
    assert row["DateLastPay"] is None and row["Email"] == "" and row["CreditLimit"] == 0


def test_every_write_takes_the_next_database_wide_rowversion(
    syspro: RunningSyspro, http: httpx.Client
) -> None:
    def stamp(row: dict[str, str]) -> int:
        return int.from_bytes(base64.b64decode(row["TimeStamp"]), "big")

    last = syspro.sim.store.last_rowversion
    created = http.post(f"{syspro.admin_url}/customers", json={"Customer": "RV"}).json()
    updated = http.patch(customer_url(syspro, "RV"), json={"Name": "Changed"}).json()
    other = http.patch(customer_url(syspro, "000003"), json={"Name": "Changed too"}).json()
    assert [stamp(created), stamp(updated), stamp(other)] == [last + 1, last + 2, last + 3]


def test_generate_replaces_the_company(syspro: RunningSyspro, http: httpx.Client) -> None:
    assert http.post(f"{syspro.admin_url}/generate", json={"n": 345, "seed": 1}).json() == {"count": 345}
    assert len(syspro.sim) == 345
    assert http.get(customer_url(syspro, "000345")).status_code == 200
    assert http.get(customer_url(syspro, "000346")).status_code == 404


def test_stats_count_requests_rows_and_paths_and_can_be_reset(
    syspro: RunningSyspro, http: httpx.Client
) -> None:
    http.post(f"{syspro.admin_url}/stats/reset")
    for _ in range(3):
        http.get(f"{syspro.odata_url}/ArCustomer", params={"$top": "7"}, auth=syspro.odata_auth)
    http.get(f"{syspro.odata_url}/ArCustomer")
    stats = http.get(f"{syspro.admin_url}/stats").json()
    assert stats["odata_requests"] == 4
    assert stats["rows_served"] == 21
    assert stats["auth_failures"] == 1
    assert stats["paths"][f"{syspro.sim.config.odata_path}/ArCustomer"] == 4
    assert stats["log"][-1]["status"] == 401
    assert http.post(f"{syspro.admin_url}/stats/reset").status_code == 204
    assert http.get(f"{syspro.admin_url}/stats").json()["odata_requests"] == 0


def test_rotating_an_operator_password_locks_out_the_old_one(
    syspro: RunningSyspro, http: httpx.Client
) -> None:
    url = f"{syspro.odata_url}/ArCustomer"
    assert http.get(url, auth=("ADMIN", "odata-secret"), params={"$top": "1"}).status_code == 200
    response = http.put(f"{syspro.admin_url}/operators/ADMIN", json={"odata_password": "rotated"})
    assert response.status_code == 200
    assert http.get(url, auth=("ADMIN", "odata-secret")).status_code == 401
    assert http.get(url, auth=("ADMIN", "rotated"), params={"$top": "1"}).status_code == 200
    http.put(f"{syspro.admin_url}/operators/SYNC", json={"odata_password": "s1", "login_password": "s2"})
    assert http.get(url, auth=("SYNC", "s1"), params={"$top": "1"}).status_code == 200
    logon = http.get(
        f"{syspro.enet_url}/Logon",
        params={"Operator": "SYNC", "OperatorPassword": "s2", "CompanyId": "EDU1", "CompanyPassword": ""},
    )
    assert not logon.text.startswith("ERROR")


def test_behaviour_switches_change_at_run_time(syspro: RunningSyspro, http: httpx.Client) -> None:
    switched = http.patch(f"{syspro.admin_url}/config", json={"page_cap": 7, "emit_next_link": False})
    assert switched.json()["page_cap"] == 7
    body = http.get(f"{syspro.odata_url}/ArCustomer", auth=syspro.odata_auth).json()
    assert len(body["value"]) == 7 and "@odata.nextLink" not in body
    assert http.patch(f"{syspro.admin_url}/config", json={"company": "X"}).status_code == 422


def test_admin_errors_for_unknown_customers(syspro: RunningSyspro, http: httpx.Client) -> None:
    assert http.get(customer_url(syspro, "missing/one")).status_code == 404
    assert http.delete(customer_url(syspro, "missing")).status_code == 404
