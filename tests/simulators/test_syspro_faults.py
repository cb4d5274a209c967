"""Injected faults of the SYSPRO simulator, switched at run time through Python and ``/_admin``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from simulators.syspro.testing import RunningSyspro, fresh_state, running_syspro


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSyspro]:
    with running_syspro() as running:
        yield running


@pytest.fixture
def syspro(server: RunningSyspro) -> Iterator[RunningSyspro]:
    with fresh_state(server, customers=200, seed=5) as running:
        yield running


@pytest.fixture
def http(syspro: RunningSyspro) -> Iterator[httpx.Client]:
    with httpx.Client(auth=syspro.odata_auth, timeout=10) as client:
        yield client


def page(http: httpx.Client, s: RunningSyspro) -> httpx.Response:
    return http.get(f"{s.odata_url}/ArCustomer", params={"$top": "50", "$select": "Customer,Name"})


def test_error_rate_one_answers_iis_html_5xx_pages(syspro: RunningSyspro, http: httpx.Client) -> None:
    syspro.sim.set_faults(error_rate=1.0)
    statuses = set()
    for _ in range(12):
        response = page(http, syspro)
        statuses.add(response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        assert b"<html" in response.content.lower() or b"<HTML" in response.content
    assert statuses == {500, 503}
    assert syspro.sim.stats.rows_served == 0
    syspro.sim.set_faults(error_rate=0.0)
    assert page(http, syspro).status_code == 200


def test_error_rate_is_a_seeded_share_of_requests(syspro: RunningSyspro, http: httpx.Client) -> None:
    def run() -> list[int]:
        syspro.sim.set_faults(error_rate=0.3, seed=11)
        return [page(http, syspro).status_code for _ in range(40)]

    first = run()
    assert first == run()
    failures = sum(status >= 500 for status in first)
    assert 4 <= failures <= 20


def test_malformed_rate_truncates_the_json_of_a_200_page(syspro: RunningSyspro, http: httpx.Client) -> None:
    syspro.sim.set_faults(malformed_rate=1.0)
    response = page(http, syspro)
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert syspro.sim.stats.faults["malformed"] == 1
    # Errors and non-JSON answers are never "malformed": only good pages are cut.
    assert http.get(f"{syspro.odata_url}/ArCustomer", auth=("ADMIN", "wrong")).status_code == 401


def test_latency_delays_every_answer(syspro: RunningSyspro, http: httpx.Client) -> None:
    syspro.sim.set_faults(latency_ms=300)
    started = time.monotonic()
    assert page(http, syspro).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_timeout_drops_the_connection_after_holding_the_request(
    syspro: RunningSyspro, http: httpx.Client
) -> None:
    syspro.sim.set_faults(timeout_rate=1.0, timeout_seconds=0.3, timeout_response="drop")
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        page(http, syspro)
    assert time.monotonic() - started >= 0.3
    syspro.sim.clear_faults()
    assert page(http, syspro).status_code == 200


def test_timeout_can_answer_504_instead(syspro: RunningSyspro, http: httpx.Client) -> None:
    syspro.sim.set_faults(timeout_rate=1.0, timeout_seconds=0.1, timeout_response="504")
    response = page(http, syspro)
    assert response.status_code == 504
    assert response.headers["content-type"].startswith("text/html")


def test_a_client_giving_up_does_not_keep_the_request_hanging(syspro: RunningSyspro) -> None:
    syspro.sim.set_faults(timeout_rate=1.0, timeout_seconds=30)
    with httpx.Client(auth=syspro.odata_auth, timeout=0.3) as impatient, pytest.raises(httpx.ReadTimeout):
        page(impatient, syspro)
    deadline = time.monotonic() + 5
    while syspro.sim.stats.faults["timeout"] < 1:
        assert time.monotonic() < deadline, "the held request did not end after the client left"
        time.sleep(0.02)


def test_faults_can_target_only_odata(syspro: RunningSyspro, http: httpx.Client) -> None:
    syspro.sim.set_faults(error_rate=1.0, applies_to="odata")
    logon = http.get(
        f"{syspro.enet_url}/Logon",
        params={"Operator": "ADMIN", "OperatorPassword": "admin", "CompanyId": "EDU1", "CompanyPassword": ""},
    )
    assert logon.status_code == 200 and not logon.text.startswith("ERROR")
    assert page(http, syspro).status_code >= 500


def test_admin_api_never_suffers_faults_and_sets_them(syspro: RunningSyspro, http: httpx.Client) -> None:
    admin = syspro.admin_url
    assert http.post(f"{admin}/faults", json={"error_rate": 1.0}).json()["error_rate"] == 1.0
    assert http.get(f"{admin}/faults").json()["error_rate"] == 1.0
    assert http.get(f"{admin}/stats").status_code == 200
    assert page(http, syspro).status_code >= 500
    assert http.post(f"{admin}/faults", json={"error_rate": 2}).status_code == 400
    assert http.post(f"{admin}/faults", json={"error_rate": 0}).status_code == 200
    assert page(http, syspro).status_code == 200
