"""e.net REST of the simulator: logon shape, errors as HTTP 200, eviction, expiry, seats, profile XML."""

# ruff: noqa: RUF001  (Windows-1252 punctuation in literals is the point of these tests)

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from simulators.syspro import SysproSimConfig, SysproSimulator
from simulators.syspro.testing import RunningSyspro, running_syspro

LOGON = {"Operator": "ADMIN", "OperatorPassword": "admin", "CompanyId": "EDU1", "CompanyPassword": ""}


class ManualClock:
    """A clock the test moves, so idle expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


_CLOCK = ManualClock()


@pytest.fixture
def clock() -> ManualClock:
    _CLOCK.now = 1000.0
    return _CLOCK


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def syspro(clock: ManualClock) -> Iterator[RunningSyspro]:
    sim = SysproSimulator(
        SysproSimConfig(
            seats=2,
            operators={
                "ADMIN": {"odata_password": "o", "login_password": "admin"},
                "SYNC": {"odata_password": "o2", "login_password": "sync"},
                "CLERK": {"odata_password": "o3", "login_password": "clerk"},
            },
        ),
        clock=clock,
    )
    with running_syspro(sim=sim) as running:
        yield running


def logon(http: httpx.Client, s: RunningSyspro, **overrides: str) -> httpx.Response:
    return http.get(f"{s.enet_url}/Logon", params={**LOGON, **overrides})


def profile(http: httpx.Client, s: RunningSyspro, user_id: str) -> httpx.Response:
    return http.get(f"{s.enet_url}/GetLogonProfile", params={"UserId": user_id})


def test_logon_returns_34_hex_characters_and_two_spaces_as_octet_stream(
    http: httpx.Client, syspro: RunningSyspro
) -> None:
    response = logon(http, syspro)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert "Microsoft-HTTPAPI/2.0" in response.headers.get_list("server")
    assert re.fullmatch(r"[0-9A-F]{34}  ", response.text)


def test_paths_and_parameter_names_are_case_insensitive(http: httpx.Client, syspro: RunningSyspro) -> None:
    url = syspro.url + syspro.sim.config.enet_path.lower() + "/logon"
    response = http.get(url, params={k.lower(): v for k, v in LOGON.items()})
    assert re.fullmatch(r"[0-9A-F]{34}  ", response.text)


@pytest.mark.parametrize("missing", ["Operator", "OperatorPassword", "CompanyId", "CompanyPassword"])
def test_every_logon_parameter_is_required_even_when_blank(
    http: httpx.Client, syspro: RunningSyspro, missing: str
) -> None:
    params = {k: v for k, v in LOGON.items() if k != missing}
    response = http.get(f"{syspro.enet_url}/Logon", params=params)
    assert response.status_code == 200
    assert response.text.startswith("ERROR")
    assert syspro.sim.enet.active_sessions() == []


def test_wrong_password_is_http_200_with_an_error_body(http: httpx.Client, syspro: RunningSyspro) -> None:
    response = logon(http, syspro, OperatorPassword="nope")
    assert response.status_code == 200
    assert response.text == "ERROR: Invalid operator password"
    assert logon(http, syspro, CompanyId="XYZ").text.startswith("ERROR")
    assert logon(http, syspro, Operator="GHOST").text.startswith("ERROR")


def test_odata_password_does_not_log_on_to_enet(http: httpx.Client, syspro: RunningSyspro) -> None:
    assert logon(http, syspro, OperatorPassword="o").text == "ERROR: Invalid operator password"


def test_logon_profile_is_windows_1252_xml(http: httpx.Client, syspro: RunningSyspro) -> None:
    syspro.sim.config.company_name = "Peña Outdoor – Distribución"
    user_id = logon(http, syspro).text
    response = profile(http, syspro, user_id)
    assert response.status_code == 200
    raw = response.content
    assert raw.startswith(b'<?xml version="1.0" encoding="Windows-1252"?>')
    assert "Peña Outdoor – Distribución".encode("cp1252") in raw
    root = ET.fromstring(raw)  # bytes: the parser honours the declared encoding
    assert root.findtext("CompanyName") == "Peña Outdoor – Distribución"
    assert root.findtext("OperatorCode") == "ADMIN"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", root.findtext("CompanyDate") or "")
    assert root.findtext("SysproVersion")


def test_logoff_answers_zero_and_ends_the_session(http: httpx.Client, syspro: RunningSyspro) -> None:
    user_id = logon(http, syspro).text
    assert http.get(f"{syspro.enet_url}/Logoff", params={"UserId": user_id}).text == "0"
    assert profile(http, syspro, user_id).text.startswith("ERROR")
    assert http.get(f"{syspro.enet_url}/Logoff", params={"UserId": user_id}).text.startswith("ERROR")


def test_stripped_session_id_is_accepted(http: httpx.Client, syspro: RunningSyspro) -> None:
    user_id = logon(http, syspro).text
    assert profile(http, syspro, user_id.strip()).text.startswith("<?xml")


def test_second_logon_of_the_same_operator_evicts_the_first(
    http: httpx.Client, syspro: RunningSyspro
) -> None:
    first = logon(http, syspro).text
    second = logon(http, syspro).text
    assert first != second
    evicted = profile(http, syspro, first)
    assert evicted.status_code == 200 and evicted.text.startswith("ERROR")
    assert profile(http, syspro, second).text.startswith("<?xml")
    assert syspro.sim.stats.enet_evictions == 1


def test_idle_sessions_expire(http: httpx.Client, syspro: RunningSyspro, clock: ManualClock) -> None:
    syspro.sim.config.session_idle_seconds = 60
    user_id = logon(http, syspro).text
    clock.now += 59
    assert profile(http, syspro, user_id).text.startswith("<?xml")  # a call resets the idle timer
    clock.now += 59
    assert profile(http, syspro, user_id).text.startswith("<?xml")
    clock.now += 61
    assert profile(http, syspro, user_id).text == syspro.sim.config.session_error_text


def test_sessions_end_after_the_configured_number_of_calls(http: httpx.Client, syspro: RunningSyspro) -> None:
    syspro.sim.config.session_max_calls = 2
    user_id = logon(http, syspro).text
    results = [profile(http, syspro, user_id).text[:5] for _ in range(3)]
    assert results == ["<?xml", "<?xml", "ERROR"]


def test_licence_seats_are_limited_and_freed_by_logoff(http: httpx.Client, syspro: RunningSyspro) -> None:
    admin = logon(http, syspro).text
    sync = logon(http, syspro, Operator="SYNC", OperatorPassword="sync").text
    refused = logon(http, syspro, Operator="CLERK", OperatorPassword="clerk")
    assert refused.status_code == 200 and refused.text == syspro.sim.config.seats_error_text
    assert http.get(f"{syspro.enet_url}/Logoff", params={"UserId": admin}).text == "0"
    assert re.fullmatch(
        r"[0-9A-F]{34}  ", logon(http, syspro, Operator="CLERK", OperatorPassword="clerk").text
    )
    assert profile(http, syspro, sync).text.startswith("<?xml")


def test_expired_sessions_free_their_seats(
    http: httpx.Client, syspro: RunningSyspro, clock: ManualClock
) -> None:
    syspro.sim.config.session_idle_seconds = 10
    logon(http, syspro)
    logon(http, syspro, Operator="SYNC", OperatorPassword="sync")
    clock.now += 11
    assert re.fullmatch(
        r"[0-9A-F]{34}  ", logon(http, syspro, Operator="CLERK", OperatorPassword="clerk").text
    )


def test_admin_can_expire_every_session(http: httpx.Client, syspro: RunningSyspro) -> None:
    user_id = logon(http, syspro).text
    assert http.post(f"{syspro.admin_url}/expire-sessions").json() == {"expired": 1}
    assert profile(http, syspro, user_id).text.startswith("ERROR")


def test_business_objects_need_a_session_and_are_refused_as_unlicensed(
    http: httpx.Client, syspro: RunningSyspro
) -> None:
    no_session = http.get(
        f"{syspro.enet_url}/Query/Query", params={"UserId": "X", "BusinessObject": "COMFND"}
    )
    assert no_session.text.startswith("ERROR")
    user_id = logon(http, syspro).text
    refused = http.get(
        f"{syspro.enet_url}/Query/Query", params={"UserId": user_id, "BusinessObject": "COMFND"}
    )
    assert refused.status_code == 200 and refused.text.startswith("ERROR: e.net exception 100000")


def test_unknown_endpoint_is_a_404(http: httpx.Client, syspro: RunningSyspro) -> None:
    assert http.get(f"{syspro.enet_url}/NoSuchThing").status_code == 404


def test_request_log_never_shows_passwords_or_session_ids(http: httpx.Client, syspro: RunningSyspro) -> None:
    user_id = logon(http, syspro).text
    profile(http, syspro, user_id)
    log = http.get(f"{syspro.admin_url}/stats").json()["log"]
    text = repr(log)
    assert "admin" not in text.replace("ADMIN", "") and user_id.strip() not in text
    assert any("OperatorPassword=***" in entry["query"] for entry in log)
    assert repr(syspro.sim.config).count("admin") == 0


def test_logon_id_can_come_json_quoted_as_some_versions_send_it(
    http: httpx.Client, syspro: RunningSyspro
) -> None:
    syspro.sim.config.logon_json_quoted = True
    quoted = logon(http, syspro).text
    assert re.fullmatch(r'"[0-9A-F]{34}  "', quoted)
    assert profile(http, syspro, quoted.strip('"')).text.startswith("<?xml")
