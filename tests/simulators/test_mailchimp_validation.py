"""Member validation in the Mailchimp simulator (addresses, merge fields, batch rules) and the switches for
behaviour the reference marks as disputed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from simulators._server import ServerThread
from simulators.mailchimp import FakeEmailPatterns, MailchimpSimConfig, MailchimpSimulator, subscriber_hash

KEY = "0123456789abcdef0123456789abcdef-us6"


@pytest.fixture(scope="module")
def sim() -> MailchimpSimulator:
    fake = FakeEmailPatterns(addresses=["blocked@example.org"])
    return MailchimpSimulator(MailchimpSimConfig(api_keys=[KEY], fake_email_patterns=fake))


@pytest.fixture(scope="module")
def http(sim: MailchimpSimulator) -> Iterator[httpx.Client]:
    with ServerThread(sim.app) as srv, httpx.Client(base_url=f"{srv.url}/3.0", auth=("u", KEY)) as client:
        yield client


@pytest.fixture
def list_id(sim: MailchimpSimulator) -> str:
    return sim.create_list()


def put(
    http: httpx.Client, list_id: str, email: str, params: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    return http.put(
        f"/lists/{list_id}/members/{subscriber_hash(email)}",
        json={"email_address": email, **body},
        params=params,
    )


def test_put_without_email_address_gives_the_documented_errors(http: httpx.Client, list_id: str) -> None:
    response = http.put(
        f"/lists/{list_id}/members/{subscriber_hash('x@example.org')}", json={"status_if_new": "subscribed"}
    )

    assert response.status_code == 400
    assert response.json()["detail"] == (
        "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
    )
    assert response.json()["errors"] == [
        {"field": "", "message": "Required fields were not provided: email_address"},
        {"field": "email_address", "message": "Schema describes string, NULL found instead"},
    ]


@pytest.mark.parametrize(
    "email", ["plain", "a@b", "a b@example.org", "a@@example.org", "x" * 250 + "@example.org"]
)
def test_malformed_address_is_not_a_valid_email(http: httpx.Client, list_id: str, email: str) -> None:
    response = http.post(f"/lists/{list_id}/members", json={"email_address": email, "status": "subscribed"})

    assert response.status_code == 400
    assert (response.json()["title"], response.json()["detail"]) == (
        "Invalid Resource",
        "Please provide a valid email address.",
    )


@pytest.mark.parametrize(
    "email", ["test@shop.example.org", "someone@mailinator.com", "a@x.example.invalid", "Blocked@example.org"]
)
def test_fake_looking_address_is_refused(http: httpx.Client, list_id: str, email: str) -> None:
    response = put(http, list_id, email, status_if_new="subscribed")

    assert response.status_code == 400
    assert response.json()["detail"] == f"{email} looks fake or invalid, please enter a real email address."


def test_incomplete_address_is_refused_and_a_complete_one_reads_back_as_an_object(
    http: httpx.Client, list_id: str
) -> None:
    partial = put(
        http,
        list_id,
        "p@example.org",
        status_if_new="subscribed",
        merge_fields={"ADDRESS": {"addr1": "1 Main", "city": "X"}},
    )
    full = put(
        http,
        list_id,
        "p@example.org",
        status_if_new="subscribed",
        merge_fields={"ADDRESS": {"addr1": "1 Main", "city": "Springfield", "state": "IL", "zip": "62701"}},
    )

    assert partial.status_code == 400
    assert partial.json()["detail"] == "Your merge fields were invalid."
    assert partial.json()["errors"] == [{"field": "ADDRESS", "message": "Please enter a complete address"}]
    assert full.json()["merge_fields"]["ADDRESS"] == {
        "addr1": "1 Main",
        "addr2": "",
        "city": "Springfield",
        "state": "IL",
        "zip": "62701",
        "country": "US",
    }


def test_empty_string_clears_a_merge_value(http: httpx.Client, list_id: str) -> None:
    put(
        http,
        list_id,
        "c@example.org",
        status_if_new="subscribed",
        merge_fields={
            "FNAME": "Cy",
            "ADDRESS": {"addr1": "1 Main", "city": "Springfield", "state": "IL", "zip": "62701"},
        },
    )

    cleared = put(http, list_id, "c@example.org", merge_fields={"FNAME": "", "ADDRESS": ""}).json()

    assert (cleared["merge_fields"]["FNAME"], cleared["merge_fields"]["ADDRESS"]) == ("", "")


def test_unknown_merge_tag_is_refused(http: httpx.Client, list_id: str) -> None:
    response = put(http, list_id, "u@example.org", status_if_new="subscribed", merge_fields={"NOPE": "x"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "NOPE"


@pytest.mark.parametrize("flag", ["true", "True", "1"])
def test_skip_merge_validation_accepts_every_spelling(
    http: httpx.Client, sim: MailchimpSimulator, flag: str
) -> None:
    list_id = sim.create_list(required_merge_fields=["LNAME", "ADDRESS"])

    refused = put(http, list_id, "r@example.org", status_if_new="subscribed")
    accepted = put(
        http, list_id, "r@example.org", params={"skip_merge_validation": flag}, status_if_new="subscribed"
    )

    assert refused.json()["errors"] == [
        {"field": "LNAME", "message": "Please enter a value"},
        {"field": "ADDRESS", "message": "Please enter a complete address"},
    ]
    assert accepted.status_code == 200


def test_required_field_cannot_be_emptied_on_update(http: httpx.Client, sim: MailchimpSimulator) -> None:
    list_id = sim.create_list(required_merge_fields=["LNAME"])
    put(http, list_id, "r@example.org", status_if_new="subscribed", merge_fields={"LNAME": "Roe"})

    untouched = put(http, list_id, "r@example.org", merge_fields={"FNAME": "Ray"})
    emptied = put(http, list_id, "r@example.org", merge_fields={"LNAME": ""})

    assert untouched.status_code == 200
    assert emptied.json()["errors"] == [{"field": "LNAME", "message": "Please enter a value"}]


def test_wrong_json_types_are_schema_errors(http: httpx.Client, list_id: str) -> None:
    response = put(http, list_id, "t@example.org", status_if_new="subscribed", vip="yes")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "vip", "message": "Schema describes boolean, string found instead"}
    ]


def test_post_requires_status(http: httpx.Client, list_id: str) -> None:
    response = http.post(f"/lists/{list_id}/members", json={"email_address": "n@example.org"})

    assert response.json()["errors"][0] == {
        "field": "",
        "message": "Required fields were not provided: status",
    }


def test_batch_of_more_than_500_members_is_refused_whole(
    http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    members = [{"email_address": f"b{i}@example.org", "status": "subscribed"} for i in range(501)]

    response = http.post(f"/lists/{list_id}", json={"members": members})

    assert response.status_code == 400
    assert sim.members(list_id) == []


def test_batch_duplicates_fail_unless_skip_duplicate_check_keeps_the_first(
    http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    members = [
        {"email_address": "d@example.org", "status": "pending"},
        {"email_address": "D@example.org", "status": "subscribed"},
    ]

    checked = http.post(f"/lists/{list_id}", json={"members": members}).json()
    other = sim.create_list()
    skipped = http.post(
        f"/lists/{other}", params={"skip_duplicate_check": "true"}, json={"members": members}
    ).json()

    assert (checked["total_created"], checked["error_count"]) == (1, 1)
    assert (skipped["total_created"], skipped["error_count"]) == (1, 0)
    assert sim.member(other, "d@example.org")["status"] == "pending"  # type: ignore[index]


def test_batch_sync_tags_replaces_tags_of_updated_members(
    http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    sim.seed_member(list_id, "s@example.org", tags=["old", "keep"])
    item = {"email_address": "s@example.org", "status": "subscribed", "tags": ["keep", "new"]}

    plain = http.post(f"/lists/{list_id}", json={"members": [item], "update_existing": True}).json()
    synced = http.post(
        f"/lists/{list_id}", json={"members": [item], "update_existing": True, "sync_tags": True}
    ).json()

    assert [t["name"] for t in plain["updated_members"][0]["tags"]] == ["old", "keep"]
    assert [t["name"] for t in synced["updated_members"][0]["tags"]] == ["keep", "new"]


def test_batch_forgotten_member_is_an_error_item(
    http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    sim.seed_member(list_id, "f@example.org")
    http.post(f"/lists/{list_id}/members/{subscriber_hash('f@example.org')}/actions/delete-permanent")

    result = http.post(
        f"/lists/{list_id}", json={"members": [{"email_address": "f@example.org", "status": "pending"}]}
    ).json()

    assert result["errors"][0]["error_code"] == "ERROR_GENERIC"
    assert "permanently deleted" in result["errors"][0]["error"]
    assert sim.is_forgotten(list_id, "f@example.org")


@contextmanager
def switched(**switches: Any) -> Iterator[tuple[MailchimpSimulator, str, httpx.Client]]:
    """A fresh simulator with ``switches`` set, one audience, and a client talking to it."""
    sim = MailchimpSimulator(MailchimpSimConfig(api_keys=[KEY], **switches))
    list_id = sim.create_list()
    with ServerThread(sim.app) as srv, httpx.Client(base_url=f"{srv.url}/3.0", auth=("u", KEY)) as http:
        yield sim, list_id, http


def test_refuse_policy_keeps_even_admin_unsubscribes() -> None:
    with switched(resubscribe_unsubscribed="refuse") as (sim, list_id, http):
        sim.seed_member(list_id, "a@example.org", status="unsubscribed", unsubscribe_origin="admin")

        response = put(http, list_id, "a@example.org", status="subscribed")

    assert response.json()["title"] == "Member In Compliance State"


def test_allow_policy_resubscribes_even_self_unsubscribes() -> None:
    with switched(resubscribe_unsubscribed="allow") as (sim, list_id, http):
        sim.seed_member(list_id, "a@example.org", status="unsubscribed")

        response = put(http, list_id, "a@example.org", status="subscribed")

    assert response.json()["status"] == "subscribed"


def test_forgotten_mode_compliance_answers_member_in_compliance_state() -> None:
    with switched(forgotten_mode="compliance") as (sim, list_id, http):
        sim.seed_member(list_id, "a@example.org")
        http.post(f"/lists/{list_id}/members/{subscriber_hash('a@example.org')}/actions/delete-permanent")

        response = put(http, list_id, "a@example.org", status_if_new="pending")

    assert response.json()["title"] == "Member In Compliance State"


def test_member_exists_on_deleted_refuses_put_of_an_archived_member() -> None:
    with switched(member_exists_on_deleted=True) as (sim, list_id, http):
        sim.seed_member(list_id, "a@example.org")
        http.delete(f"/lists/{list_id}/members/a@example.org")

        response = put(http, list_id, "a@example.org", status="subscribed")

    assert response.json()["title"] == "Member Exists"


@pytest.mark.parametrize(("switch", "expected"), [("status_if_new", "pending"), ("status", "subscribed")])
def test_status_on_create_switch_picks_which_field_wins(switch: str, expected: str) -> None:
    with switched(status_on_create=switch) as (_, list_id, http):
        response = put(http, list_id, "a@example.org", status_if_new="pending", status="subscribed")

    assert response.json()["status"] == expected


def test_count_over_cap_can_be_rejected() -> None:
    with switched(count_over_cap="reject") as (_, list_id, http):
        response = http.get(f"/lists/{list_id}/members", params={"count": 1001})

    assert response.status_code == 400
