"""The simulated SYSPRO OData service, over real HTTP: envelope, paging, auth, row shape, rowversions."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulators.syspro import SysproSimulator
from simulators.syspro.schema import AR_CUSTOMER
from simulators.syspro.testing import RunningSyspro, fresh_state, running_syspro

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture(scope="module")
def syspro() -> Iterator[RunningSyspro]:
    """12,000 customers: more than two full pages at the 5000-row cap. Tests here only read."""
    with running_syspro(customers=12_000, seed=7) as running:
        yield running


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSyspro]:
    with running_syspro() as running:
        yield running


@pytest.fixture
def fresh(server: RunningSyspro) -> Iterator[RunningSyspro]:
    """50 customers on a shared server; config switches made by the test are undone afterwards."""
    with fresh_state(server, customers=50, seed=3) as running:
        yield running


def client(s: RunningSyspro) -> httpx.Client:
    return httpx.Client(auth=s.odata_auth, timeout=30)


def scan(s: RunningSyspro, params: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Follow nextLinks from the first page; return all rows and the URLs requested."""
    rows: list[dict[str, Any]] = []
    urls = []
    url: str | None = f"{s.odata_url}/ArCustomer"
    query: dict[str, str] | None = params
    with client(s) as c:
        while url:
            response = c.get(url, params=query)
            assert response.status_code == 200, response.text
            urls.append(str(response.url))
            body = response.json()
            rows.extend(body["value"])
            url, query = body.get("@odata.nextLink"), None
    return rows, urls


def test_service_document_and_metadata_describe_arcustomer(syspro: RunningSyspro) -> None:
    with client(syspro) as c:
        service = c.get(syspro.odata_url)
        metadata = c.get(f"{syspro.odata_url}/$metadata")
    assert service.status_code == 200
    assert service.headers["odata-version"] == "4.0"
    body = service.json()
    assert body["@odata.context"] == f"{syspro.odata_url}/$metadata"
    assert {"name": "ArCustomer", "kind": "EntitySet", "url": "ArCustomer"} in body["value"]

    assert metadata.status_code == 200
    assert metadata.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(metadata.content)
    entity = next(e for e in root.iter(f"{EDM}EntityType") if e.get("Name") == "ArCustomer")
    assert [ref.get("Name") for ref in entity.iter(f"{EDM}PropertyRef")] == ["Customer"]
    props = {p.get("Name"): p.attrib for p in entity.iter(f"{EDM}Property")}
    assert props["Customer"]["Type"] == "Edm.String" and props["Customer"]["MaxLength"] == "15"
    assert props["CreditLimit"]["Type"] == "Edm.Decimal" and props["CreditLimit"]["Precision"] == "12"
    assert props["UserField2"]["Scale"] == "2"
    assert props["DateLastPay"]["Type"] == "Edm.DateTimeOffset" and props["DateLastPay"]["Nullable"] == "true"
    assert props["TimeStamp"]["Type"] == "Edm.Binary"
    for column in ("Email", "SoldToAddr3Loc", "ShipPostalCode", "CountyZip", "Nationality", "UserField1"):
        assert column in props


def test_paging_follows_nextlink_to_every_row_exactly_once(syspro: RunningSyspro) -> None:
    rows, urls = scan(syspro, {"$orderby": "Customer", "$select": "Customer,Name"})
    codes = [r["Customer"] for r in rows]
    assert len(codes) == 12_000 == len(set(codes))
    assert codes == sorted(codes)
    assert len(urls) == 3
    assert "$skip=5000" in urls[1] and "$skip=10000" in urls[2]
    assert urls[1].startswith("http://")  # absolute, carrying the other options
    assert "$select=Customer,Name" in urls[1] and "$orderby=Customer" in urls[1]
    assert set(rows[0]) == {"Customer", "Name"}


def test_top_above_the_cap_is_served_in_capped_pages_with_remaining_top(syspro: RunningSyspro) -> None:
    with client(syspro) as c:
        body = c.get(f"{syspro.odata_url}/ArCustomer", params={"$top": "7000", "$select": "Customer"}).json()
        assert len(body["value"]) == 5000
        link = body["@odata.nextLink"]
        assert "$top=2000" in link and "$skip=5000" in link
        second = c.get(link).json()
    assert len(second["value"]) == 2000
    assert "@odata.nextLink" not in second


def test_without_nextlink_a_large_request_is_silently_truncated_at_the_cap(server: RunningSyspro) -> None:
    with fresh_state(server, customers=12_000) as s, client(s) as c:
        s.sim.config.emit_next_link = False
        first = c.get(f"{s.odata_url}/ArCustomer", params={"$select": "Customer"}).json()
        assert len(first["value"]) == 5000
        assert "@odata.nextLink" not in first
        # A client must page itself with $skip and stop on a short page.
        codes = []
        skip = 0
        while True:
            page = c.get(
                f"{s.odata_url}/ArCustomer",
                params={"$select": "Customer", "$orderby": "Customer", "$top": "5000", "$skip": str(skip)},
            )
            values = page.json()["value"]
            codes += [v["Customer"] for v in values]
            if len(values) < 5000:
                break
            skip += len(values)
    assert len(codes) == 12_000 == len(set(codes))


def test_count_reports_the_filtered_total_not_the_page(syspro: RunningSyspro) -> None:
    with client(syspro) as c:
        everything = c.get(f"{syspro.odata_url}/ArCustomer", params={"$count": "true", "$top": "1"}).json()
        held = c.get(
            f"{syspro.odata_url}/ArCustomer",
            params={"$count": "true", "$filter": "CustomerOnHold eq 'Y'", "$select": "Customer"},
        ).json()
        plain = c.get(f"{syspro.odata_url}/ArCustomer/$count", params={"$filter": "CustomerOnHold eq 'Y'"})
    assert everything["@odata.count"] == 12_000
    assert len(everything["value"]) == 1
    assert held["@odata.count"] == len(held["value"]) == int(plain.text)
    assert 0.02 * 12_000 < held["@odata.count"] < 0.08 * 12_000


def test_rows_have_sql_server_shapes(syspro: RunningSyspro) -> None:
    rows, _ = scan(syspro, {"$top": "2000"})
    for row in rows:
        for column in AR_CUSTOMER.columns:
            value = row[column.name]
            if column.kind == "string":
                assert isinstance(value, str), column.name
                if column.padded:
                    assert len(value) == column.length, (column.name, value)
                else:
                    assert len(value) <= column.length, (column.name, value)
        assert row["Currency"] in ("$  ", "CAD", "GBP", "ZAR", "AUD")
        assert row["CustomerOnHold"] in ("Y", "N")
        assert row["CreditStatus"] in ("0", "1", "2", "3", "4", "5", "6", "9", " ")
        assert isinstance(row["CreditLimit"], int)
        assert row["DateCustAdded"].endswith("T00:00:00Z")
        assert len(base64.b64decode(row["TimeStamp"])) == 8
    assert any(row["DateLastPay"] is None for row in rows)
    assert any(row["LanguageCode"] == "  " for row in rows)


def test_select_of_an_unknown_column_is_a_400_odata_error(syspro: RunningSyspro) -> None:
    with client(syspro) as c:
        response = c.get(f"{syspro.odata_url}/ArCustomer", params={"$select": "Customer,LastModified"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "LastModified" in error["message"] and "code" in error


@pytest.mark.parametrize(
    "option",
    [
        {"$top": "-1"},
        {"$skip": "x"},
        {"$count": "yes"},
        {"$expand": "Lines"},
        {"$orderby": "Customer sideways"},
        {"$orderby": "Nope"},
    ],
)
def test_invalid_query_options_are_400_odata_errors(syspro: RunningSyspro, option: dict[str, str]) -> None:
    with client(syspro) as c:
        response = c.get(f"{syspro.odata_url}/ArCustomer", params=option)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}


def test_unknown_entity_set_is_a_404_odata_error(syspro: RunningSyspro) -> None:
    with client(syspro) as c:
        wrong_set = c.get(f"{syspro.odata_url}/ArCustomers")
        wrong_case = c.get(f"{syspro.odata_url}/arcustomer")
    assert wrong_set.status_code == 404 and "error" in wrong_set.json()
    assert wrong_case.status_code == 404


def test_service_root_path_is_case_insensitive_like_iis(syspro: RunningSyspro) -> None:
    url = syspro.url + syspro.sim.config.odata_path.lower() + "/ArCustomer"
    with client(syspro) as c:
        response = c.get(url, params={"$top": "1"})
    assert response.status_code == 200 and len(response.json()["value"]) == 1


def test_single_entity_by_key(syspro: RunningSyspro) -> None:
    with client(syspro) as c:
        found = c.get(f"{syspro.odata_url}/ArCustomer('000042')")
        missing = c.get(f"{syspro.odata_url}/ArCustomer('999999')")
    assert found.status_code == 200 and found.json()["Customer"] == "000042"
    assert missing.status_code == 404


def test_missing_or_wrong_credentials_get_an_iis_basic_challenge_not_json(syspro: RunningSyspro) -> None:
    url = f"{syspro.odata_url}/ArCustomer"
    for auth in (None, ("ADMIN", "wrong"), ("NOBODY", "odata-secret"), ("ADMIN", "admin")):
        response = httpx.get(url, auth=auth)
        assert response.status_code == 401, auth
        assert response.headers["www-authenticate"].startswith('Basic realm="')
        assert response.headers["content-type"].startswith("text/html")
        with pytest.raises(ValueError):
            response.json()


def test_empty_401_body_variant(fresh: RunningSyspro) -> None:
    fresh.sim.config.unauthorized_body = "empty"
    response = httpx.get(f"{fresh.odata_url}/ArCustomer", auth=("ADMIN", "bad"))
    assert response.status_code == 401 and response.content == b""
    assert "www-authenticate" in response.headers


def test_operator_list_reload_answers_401_once_every_n_requests(fresh: RunningSyspro) -> None:
    fresh.sim.config.odata_auth_expire_every = 3
    with client(fresh) as c:
        statuses = [
            c.get(f"{fresh.odata_url}/ArCustomer", params={"$top": "1"}).status_code for _ in range(7)
        ]
    assert statuses == [200, 200, 401, 200, 200, 401, 200]


def test_update_takes_a_new_higher_timestamp_and_timestamp_filter_returns_only_changed_rows(
    fresh: RunningSyspro,
) -> None:
    sim = fresh.sim
    before = {r["Customer"]: r["TimeStamp"] for r in sim.rows()}
    high_water = max(base64.b64decode(t) for t in before.values())
    sim.update("000010", Email="new@x.example")
    sim.update("000020", CreditLimit=5)
    sim.update("000020", CreditLimit=5)  # an UPDATE that changes nothing still takes a rowversion
    literal = base64.urlsafe_b64encode(high_water).decode()
    rows, _ = scan(fresh, {"$filter": f"TimeStamp gt binary'{literal}'", "$orderby": "TimeStamp"})
    assert [r["Customer"] for r in rows] == ["000010", "000020"]
    stamps = [int.from_bytes(base64.b64decode(r["TimeStamp"]), "big") for r in rows]
    assert stamps[0] > int.from_bytes(high_water, "big")
    assert stamps[1] == stamps[0] + 2
    assert base64.b64decode(before["000010"]) < base64.b64decode(rows[0]["TimeStamp"])


def test_timestamp_filter_and_order_can_be_refused(fresh: RunningSyspro) -> None:
    fresh.sim.config.timestamp_filter_allowed = False
    with client(fresh) as c:
        s = fresh
        filtered = c.get(f"{s.odata_url}/ArCustomer", params={"$filter": "TimeStamp gt binary'AAAAAAAAAAE='"})
        ordered = c.get(f"{s.odata_url}/ArCustomer", params={"$orderby": "TimeStamp"})
        selected = c.get(f"{s.odata_url}/ArCustomer", params={"$select": "Customer,TimeStamp"})
    assert filtered.status_code == 400 and "TimeStamp" in filtered.json()["error"]["message"]
    assert ordered.status_code == 400
    assert selected.status_code == 200


def test_insert_sets_date_added_today_and_delete_removes_the_row(fresh: RunningSyspro) -> None:
    created = fresh.sim.create({"Customer": "NEW1", "Name": "New Co", "CustomerOnHold": "N"})
    assert created["DateCustAdded"].endswith("T00:00:00Z")
    assert created["Currency"] == "   " and created["Email"] == ""
    with client(fresh) as c:
        assert c.get(f"{fresh.odata_url}/ArCustomer('NEW1')").status_code == 200
        fresh.sim.delete("NEW1")
        assert c.get(f"{fresh.odata_url}/ArCustomer('NEW1')").status_code == 404
        count = c.get(f"{fresh.odata_url}/ArCustomer", params={"$count": "true", "$top": "0"}).json()
    assert count["@odata.count"] == 50


def test_pages_reflect_changes_made_between_requests(fresh: RunningSyspro) -> None:
    with client(fresh) as c:
        params = {"$filter": "CustomerOnHold eq 'Y'", "$count": "true", "$select": "Customer"}
        before = c.get(f"{fresh.odata_url}/ArCustomer", params=params).json()["@odata.count"]
        target = next(r["Customer"] for r in fresh.sim.rows() if r["CustomerOnHold"] == "N")
        fresh.sim.update(target, CustomerOnHold="Y")
        after = c.get(f"{fresh.odata_url}/ArCustomer", params=params).json()["@odata.count"]
    assert after == before + 1


def test_amendment_journal_records_adds_changes_and_deletes_when_on(fresh: RunningSyspro) -> None:
    fresh.sim.set_switches(journalling=True)
    with client(fresh) as c:
        s = fresh
        s.sim.create({"Customer": "J1", "Name": "Journal Co"})
        s.sim.update("J1", Name="Journal Co Ltd", Email="a@b.example")
        s.sim.delete("J1")
        rows = c.get(f"{s.odata_url}/ArAmendmentJnl", params={"$filter": "Customer eq 'J1'"}).json()["value"]
    assert [(r["ChangeFlag"], r["ColumnName"], r["Before"]) for r in rows] == [
        ("A", "", ""),
        ("U", "Name", "Journal Co"),
        ("U", "Email", ""),
        ("X", "", ""),
    ]


def test_amendment_journal_is_not_exposed_when_off(syspro: RunningSyspro) -> None:
    with client(syspro) as c:
        assert c.get(f"{syspro.odata_url}/ArAmendmentJnl").status_code == 404


def test_company_can_be_generated_again_with_another_seed() -> None:
    sim = SysproSimulator()
    sim.generate(10, seed=1)
    first = sim.rows()
    sim.generate(10, seed=2)
    assert sim.rows() != first
    sim.generate(10, seed=1)
    assert [r["Name"] for r in sim.rows()] == [r["Name"] for r in first]


def test_nextlink_keeps_a_filter_with_url_special_characters_intact(fresh: RunningSyspro) -> None:
    for i in range(3):
        fresh.sim.create({"Customer": f"RD{i}", "Name": f"R&D + Co #{i} 50%"})
    fresh.sim.config.page_cap = 1
    rows, urls = scan(fresh, {"$filter": "startswith(Name,'R&D + Co #')", "$select": "Customer,Name"})
    assert [r["Customer"] for r in rows] == ["RD0", "RD1", "RD2"]
    assert len(urls) == 3
