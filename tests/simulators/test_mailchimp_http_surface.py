"""The HTTP surface of the Mailchimp simulator: data-center routing, credentials, headers, OAuth and the
admin API, checked with a plain HTTP client so nothing an SDK smooths over goes unseen."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from simulators._server import ServerThread
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator, subscriber_hash

KEY = "0123456789abcdef0123456789abcdef-us6"
US9_KEY = "fedcba9876543210fedcba9876543210-us9"
DISABLED = "ffffffffffffffffffffffffffffffff-us6"


@pytest.fixture(scope="module")
def sim() -> MailchimpSimulator:
    return MailchimpSimulator(
        MailchimpSimConfig(data_centers=["us6", "us9"], api_keys=[KEY, US9_KEY], disabled_api_keys=[DISABLED])
    )


@pytest.fixture(scope="module")
def server(sim: MailchimpSimulator) -> Iterator[ServerThread]:
    with ServerThread(sim.app) as srv:
        yield srv


@pytest.fixture
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=("anystring", KEY), timeout=10) as client:
        yield client


def test_requests_without_a_dc_go_to_the_first_data_center(http: httpx.Client) -> None:
    assert http.get("/3.0/ping").status_code == 200
    assert http.get("/3.0/ping", auth=("x", US9_KEY)).status_code == 401


def test_dc_in_the_path_must_match_the_key(http: httpx.Client) -> None:
    assert http.get("/us9/3.0/ping", auth=("x", US9_KEY)).status_code == 200
    response = http.get("/us9/3.0/ping")

    assert response.status_code == 401
    assert response.json()["title"] == "API Key Invalid"


def test_dc_in_the_host_header_must_match_the_key(http: httpx.Client) -> None:
    us9_host = {"Host": "us9.api.mailchimp.com"}

    assert http.get("/3.0/ping", headers=us9_host, auth=("x", US9_KEY)).status_code == 200
    assert http.get("/3.0/ping", headers=us9_host).status_code == 401


def test_apikey_authorization_scheme_is_accepted(server: ServerThread) -> None:
    response = httpx.get(f"{server.url}/3.0/ping", headers={"Authorization": f"apikey {KEY}"})

    assert response.status_code == 200


def test_missing_key_is_api_key_missing(server: ServerThread) -> None:
    response = httpx.get(f"{server.url}/3.0/ping")

    assert response.status_code == 401
    assert response.json()["title"] == "API Key Missing"
    assert response.json()["detail"] == "Your request did not include an API key."


def test_unknown_and_disabled_keys_are_refused(http: httpx.Client, server: ServerThread) -> None:
    unknown = http.get("/3.0/ping", auth=("x", "0" * 32 + "-us6"))
    disabled = http.get("/3.0/ping", auth=("x", DISABLED))
    garbled = httpx.get(f"{server.url}/3.0/ping", headers={"Authorization": "Basic !!!"})

    assert (unknown.status_code, unknown.json()["title"]) == (401, "API Key Invalid")
    assert (disabled.status_code, disabled.json()["detail"]) == (401, "API key has been disabled")
    assert garbled.status_code == 401


def test_errors_are_problem_json_with_the_request_id_as_instance(http: httpx.Client) -> None:
    response = http.get("/3.0/lists/nope/members")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json; charset=utf-8"
    assert response.headers["x-request-id"] == response.json()["instance"]
    assert 'rel="describedBy"' in response.headers["link"]


def test_success_and_204_both_carry_a_json_content_type(http: httpx.Client, sim: MailchimpSimulator) -> None:
    list_id = sim.create_list()
    sim.seed_member(list_id, "a@example.org")

    ok = http.get(f"/3.0/lists/{list_id}/members/a@example.org")
    empty = http.delete(f"/3.0/lists/{list_id}/members/a@example.org")

    assert ok.headers["content-type"] == "application/json; charset=utf-8"
    assert ok.headers["x-request-id"]
    assert empty.status_code == 204
    assert empty.content == b""
    assert empty.headers["content-type"] == "application/json; charset=utf-8"


def test_wrong_method_is_405_with_an_allow_header(http: httpx.Client, sim: MailchimpSimulator) -> None:
    list_id = sim.create_list()
    sim.seed_member(list_id, "a@example.org")

    response = http.put(f"/3.0/lists/{list_id}/members/{subscriber_hash('a@example.org')}/tags", json={})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["title"] == "Method Not Allowed"


def test_unparseable_json_is_a_json_parse_error(http: httpx.Client, sim: MailchimpSimulator) -> None:
    list_id = sim.create_list()

    response = http.post(f"/3.0/lists/{list_id}/members", content=b"{not json")

    assert (response.status_code, response.json()["title"]) == (400, "JSON Parse Error")


def test_count_above_the_cap_is_clamped_to_1000(http: httpx.Client, sim: MailchimpSimulator) -> None:
    list_id = sim.create_list()
    for i in range(1001):
        sim.seed_member(list_id, f"c{i}@example.org")

    page = http.get(f"/3.0/lists/{list_id}/members", params={"count": 5000, "fields": "members.id"}).json()

    assert len(page["members"]) == 1000


def test_lists_and_merge_fields_describe_the_audience(http: httpx.Client, sim: MailchimpSimulator) -> None:
    list_id = sim.create_list(name="Customers")
    sim.seed_member(list_id, "s@example.org")

    listed = http.get("/3.0/lists", params={"count": 1000}).json()
    audience = http.get(f"/3.0/lists/{list_id}").json()
    fields = http.get(f"/3.0/lists/{list_id}/merge-fields").json()
    created = http.post(
        f"/3.0/lists/{list_id}/merge-fields", json={"name": "Account", "type": "text", "tag": "ACCT"}
    )

    assert list_id in [entry["id"] for entry in listed["lists"]]
    assert (audience["name"], audience["stats"]["member_count"]) == ("Customers", 1)
    assert [(f["tag"], f["type"]) for f in fields["merge_fields"]] == [
        ("FNAME", "text"),
        ("LNAME", "text"),
        ("ADDRESS", "address"),
        ("PHONE", "phone"),
    ]
    assert created.status_code == 200
    assert created.json()["tag"] == "ACCT"
    assert http.get(f"/3.0/lists/{list_id}/merge-fields").json()["total_items"] == 5


def test_oauth_flow_leads_back_to_this_simulator(server: ServerThread) -> None:
    authorize = httpx.get(
        f"{server.url}/oauth2/authorize",
        params={"response_type": "code", "client_id": "cid", "redirect_uri": "http://app/cb", "state": "s1"},
    )
    assert authorize.status_code == 302
    query = parse_qs(urlparse(authorize.headers["location"]).query)
    assert query["state"] == ["s1"]

    form = {
        "grant_type": "authorization_code",
        "client_id": "cid",
        "client_secret": "sec",
        "redirect_uri": "http://app/cb",
        "code": query["code"][0],
    }
    token = httpx.post(f"{server.url}/oauth2/token", data=form).json()
    assert (token["expires_in"], token["scope"]) == (0, None)
    replay = httpx.post(f"{server.url}/oauth2/token", data=form)
    assert replay.status_code == 400

    metadata = httpx.get(
        f"{server.url}/oauth2/metadata", headers={"Authorization": f"OAuth {token['access_token']}"}
    )
    assert metadata.json()["dc"] == "us6"
    assert metadata.json()["api_endpoint"] == f"{server.url}/us6"
    assert (
        httpx.get(
            f"{server.url}/oauth2/metadata", headers={"Authorization": f"Bearer {token['access_token']}"}
        ).status_code
        == 401
    )

    ping = httpx.get(
        f"{metadata.json()['api_endpoint']}/3.0/ping",
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert ping.status_code == 200


def test_admin_api_seeds_plays_the_contact_and_reads_back(server: ServerThread) -> None:
    with httpx.Client(base_url=f"{server.url}/_admin", timeout=10) as admin:
        list_id = admin.post("/lists", json={"name": "Admin", "required_merge_fields": ["FNAME"]}).json()[
            "id"
        ]
        admin.post(
            f"/lists/{list_id}/members",
            json={"email_address": "x@example.org", "merge_fields": {"FNAME": "X"}},
        )
        unsub = admin.post(f"/lists/{list_id}/members/x@example.org/unsubscribe", json={"origin": "contact"})
        members = admin.get(f"/lists/{list_id}/members").json()["members"]
        missing = admin.get(f"/lists/{list_id}/members/nobody@example.org")

    assert unsub.json()["status"] == "unsubscribed"
    assert [(m["email_address"], m["status"]) for m in members] == [("x@example.org", "unsubscribed")]
    assert missing.status_code == 404

    with httpx.Client(base_url=server.url, auth=("u", KEY), timeout=10) as http:
        refused = http.put(f"/3.0/lists/{list_id}/members/x@example.org", json={"status": "subscribed"})
    assert refused.json()["title"] == "Member In Compliance State"


def test_admin_api_sets_faults_and_reads_stats(server: ServerThread) -> None:
    with httpx.Client(base_url=f"{server.url}/_admin", timeout=10) as admin:
        admin.post("/stats/reset")
        faults = admin.patch("/faults", json={"queued": [{"fault": "500", "kind": "ping"}]}).json()
        assert faults["queued"] == [{"fault": "500", "kind": "ping"}]
        bad = admin.patch("/faults", json={"error_rate": 2})

        with httpx.Client(base_url=server.url, auth=("u", KEY), timeout=10) as http:
            assert http.get("/3.0/ping").status_code == 500
            assert http.get("/3.0/ping").status_code == 200

        stats = admin.get("/stats").json()
        log = admin.get("/requests").json()["requests"]

    assert bad.status_code == 400
    assert stats["calls"]["ping"] == {"200": 1, "500": 1}
    assert [(e["kind"], e["status"]) for e in log] == [("ping", 500), ("ping", 200)]
    assert KEY not in str(stats) and KEY not in str(log)


def test_basic_auth_user_name_is_ignored(server: ServerThread) -> None:
    header = "Basic " + base64.b64encode(f"whoever:{KEY}".encode()).decode()

    assert httpx.get(f"{server.url}/3.0/ping", headers={"Authorization": header}).status_code == 200
