"""Contract tests of the Mailchimp simulator driven by the official SDK (mailchimp-marketing 3.0.80).

If the official client can talk to the simulator the way it talks to Mailchimp, and gets the answers the
reference documents, the connector's own client is tested against something real clients accept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from simulators._server import ServerThread
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator, subscriber_hash

KEY = "0123456789abcdef0123456789abcdef-us6"
US9_KEY = "fedcba9876543210fedcba9876543210-us9"
TOKEN = "5c6ccc561059aa386da9d112215bae55"


@pytest.fixture(scope="module")
def sim() -> MailchimpSimulator:
    return MailchimpSimulator(
        MailchimpSimConfig(api_keys=[KEY, US9_KEY], oauth_tokens={TOKEN: "us6"}, seed=7)
    )


@pytest.fixture(scope="module")
def server(sim: MailchimpSimulator) -> Iterator[ServerThread]:
    with ServerThread(sim.app) as srv:
        yield srv


def sdk(server: ServerThread, config: dict[str, str]) -> Any:
    client = mailchimp_marketing.Client()
    client.set_config({**config, "timeout": 10})
    client.api_client.host = f"{server.url}/3.0"
    return client


@pytest.fixture
def mc(server: ServerThread) -> Any:
    return sdk(server, {"api_key": KEY, "server": "us6"})


@pytest.fixture
def list_id(sim: MailchimpSimulator) -> str:
    return sim.create_list(name="Contract audience")


def problem(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """Run an SDK call that must fail; return its HTTP status and parsed problem+json body."""
    with pytest.raises(ApiClientError) as raised:
        call(*args, **kwargs)
    return raised.value.status_code, json.loads(raised.value.text)


def put(mc: Any, list_id: str, email: str, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = mc.lists.set_list_member(
        list_id, subscriber_hash(email), {"email_address": email, **body}
    )
    return result


def test_ping_answers_everything_is_chimpy(mc: Any) -> None:
    assert mc.ping.get() == {"health_status": "Everything's Chimpy!"}


def test_put_creates_a_member_with_every_documented_field(mc: Any, list_id: str) -> None:
    member = put(mc, list_id, " Urist.McVankab@freddiesjokes.com ", status_if_new="subscribed")

    assert member["id"] == "62eeb292278cc15f5817cb78f7790b08"
    assert member["email_address"] == "Urist.McVankab@freddiesjokes.com"
    assert member["status"] == "subscribed"
    assert member["merge_fields"] == {"FNAME": "", "LNAME": "", "ADDRESS": "", "PHONE": ""}
    for name in (
        "unique_email_id",
        "web_id",
        "email_type",
        "interests",
        "stats",
        "ip_signup",
        "timestamp_signup",
        "ip_opt",
        "timestamp_opt",
        "member_rating",
        "last_changed",
        "language",
        "vip",
        "email_client",
        "location",
        "source",
        "tags_count",
        "tags",
        "list_id",
        "_links",
    ):
        assert name in member, name
    assert member["list_id"] == list_id
    assert member["timestamp_opt"].endswith("+00:00")


def test_status_if_new_leaves_an_existing_members_status_but_updates_other_fields(
    mc: Any, list_id: str
) -> None:
    put(mc, list_id, "ann@example.org", status_if_new="pending", merge_fields={"FNAME": "Ann"})

    member = put(mc, list_id, "ann@example.org", status_if_new="subscribed", merge_fields={"LNAME": "Lee"})

    assert member["status"] == "pending"
    assert member["merge_fields"]["FNAME"] == "Ann"
    assert member["merge_fields"]["LNAME"] == "Lee"


def test_status_changes_an_existing_member(mc: Any, list_id: str) -> None:
    put(mc, list_id, "bob@example.org", status_if_new="pending")

    assert put(mc, list_id, "bob@example.org", status="subscribed")["status"] == "subscribed"
    assert put(mc, list_id, "bob@example.org", status="unsubscribed")["status"] == "unsubscribed"


def test_unsubscribed_member_is_never_resubscribed_through_status_if_new(
    mc: Any, sim: MailchimpSimulator, list_id: str
) -> None:
    put(mc, list_id, "carol@example.org", status_if_new="subscribed")
    sim.unsubscribe_by_contact(list_id, "carol@example.org")

    member = put(mc, list_id, "carol@example.org", status_if_new="subscribed", merge_fields={"FNAME": "C"})

    assert member["status"] == "unsubscribed"
    assert member["merge_fields"]["FNAME"] == "C"


def test_subscribing_a_self_unsubscribed_member_is_a_compliance_error_but_pending_is_accepted(
    mc: Any, sim: MailchimpSimulator, list_id: str
) -> None:
    put(mc, list_id, "dan@example.org", status_if_new="subscribed")
    sim.unsubscribe_by_contact(list_id, "dan@example.org")

    status, body = problem(put, mc, list_id, "dan@example.org", status="subscribed")

    assert status == 400
    assert body["title"] == "Member In Compliance State"
    assert body["detail"] == (
        "dan@example.org is in a compliance state due to unsubscribe, bounce, or compliance review and "
        "cannot be subscribed."
    )
    assert sim.member(list_id, "dan@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    assert put(mc, list_id, "dan@example.org", status="pending")["status"] == "pending"


def test_cleaned_and_reviewed_members_cannot_be_subscribed(
    mc: Any, sim: MailchimpSimulator, list_id: str
) -> None:
    put(mc, list_id, "bounce@example.org", status_if_new="subscribed")
    put(mc, list_id, "review@example.org", status_if_new="pending")
    sim.clean(list_id, "bounce@example.org")
    sim.set_compliance(list_id, "review@example.org")

    for email in ("bounce@example.org", "review@example.org"):
        status, body = problem(put, mc, list_id, email, status="subscribed")
        assert (status, body["title"]) == (400, "Member In Compliance State")


def test_member_unsubscribed_by_an_admin_may_be_resubscribed_by_default(
    mc: Any, sim: MailchimpSimulator, list_id: str
) -> None:
    put(mc, list_id, "erin@example.org", status_if_new="subscribed")
    sim.unsubscribe_by_admin(list_id, "erin@example.org")

    assert put(mc, list_id, "erin@example.org", status="subscribed")["status"] == "subscribed"


def test_email_change_at_the_old_hash_rekeys_the_member(mc: Any, list_id: str) -> None:
    old = put(mc, list_id, "old@example.org", status_if_new="subscribed")

    renamed = mc.lists.set_list_member(list_id, old["id"], {"email_address": "New@Example.org"})

    assert renamed["id"] == subscriber_hash("new@example.org")
    assert renamed["unique_email_id"] == old["unique_email_id"]
    assert mc.lists.get_list_member(list_id, "new@example.org")["email_address"] == "New@Example.org"
    status, body = problem(mc.lists.get_list_member, list_id, old["id"])
    assert (status, body["title"]) == (404, "Resource Not Found")


def test_email_change_to_an_address_already_in_the_list_is_refused_even_when_archived(
    mc: Any, list_id: str
) -> None:
    first = put(mc, list_id, "first@example.org", status_if_new="subscribed")
    put(mc, list_id, "taken@example.org", status_if_new="subscribed")
    mc.lists.delete_list_member(list_id, subscriber_hash("taken@example.org"))

    status, body = problem(
        mc.lists.update_list_member, list_id, first["id"], {"email_address": "taken@example.org"}
    )

    assert (status, body["title"]) == (400, "Invalid Resource")
    assert body["detail"] == '"taken@example.org" is already in this list with a status of "archived".'


def test_email_change_of_a_cleaned_member_is_refused(mc: Any, sim: MailchimpSimulator, list_id: str) -> None:
    member = put(mc, list_id, "gone@example.org", status_if_new="subscribed")
    sim.clean(list_id, "gone@example.org")

    status, body = problem(
        mc.lists.update_list_member, list_id, member["id"], {"email_address": "g2@example.org"}
    )

    assert status == 400
    assert body["detail"].startswith('This member\'s status is "cleaned."')


def test_archive_then_put_unarchives_with_the_given_status(mc: Any, list_id: str) -> None:
    member = put(mc, list_id, "arch@example.org", status_if_new="subscribed")

    response = mc.lists.delete_list_member(list_id, member["id"])
    assert response.status_code == 204
    assert mc.lists.get_list_member(list_id, member["id"])["status"] == "archived"
    archived = mc.lists.get_list_members_info(list_id, status="archived")["members"]
    assert [m["email_address"] for m in archived] == ["arch@example.org"]
    assert "arch@example.org" not in [
        m["email_address"] for m in mc.lists.get_list_members_info(list_id)["members"]
    ]

    assert put(mc, list_id, "arch@example.org", status="pending")["status"] == "pending"


def test_archived_member_put_with_only_status_if_new_takes_that_status(mc: Any, list_id: str) -> None:
    member = put(mc, list_id, "arch2@example.org", status_if_new="subscribed")
    mc.lists.delete_list_member(list_id, member["id"])

    assert put(mc, list_id, "arch2@example.org", status_if_new="transactional")["status"] == "transactional"


def test_cleaned_member_cannot_be_deleted(mc: Any, sim: MailchimpSimulator, list_id: str) -> None:
    member = put(mc, list_id, "stuck@example.org", status_if_new="subscribed")
    sim.clean(list_id, member["id"])

    status, body = problem(mc.lists.delete_list_member, list_id, member["id"])

    assert status == 405
    assert body["detail"] == "This list member cannot be removed.  Please contact support."


def test_permanently_deleted_member_is_gone_and_cannot_be_readded(mc: Any, list_id: str) -> None:
    member = put(mc, list_id, "forget@example.org", status_if_new="subscribed")

    assert mc.lists.delete_list_member_permanent(list_id, member["id"]).status_code == 204

    assert problem(mc.lists.get_list_member, list_id, member["id"])[0] == 404
    for attempt in (
        lambda: put(mc, list_id, "forget@example.org", status_if_new="pending"),
        lambda: mc.lists.add_list_member(
            list_id, {"email_address": "forget@example.org", "status": "pending"}
        ),
    ):
        status, body = problem(attempt)
        assert (status, body["title"]) == (400, "Forgotten Email Not Subscribed")
        assert body["detail"] == (
            "forget@example.org was permanently deleted and cannot be re-imported. The contact must "
            "re-subscribe to get back on the list."
        )


def test_post_of_an_existing_member_is_member_exists(mc: Any, list_id: str) -> None:
    mc.lists.add_list_member(list_id, {"email_address": "dup@example.org", "status": "subscribed"})

    status, body = problem(
        mc.lists.add_list_member, list_id, {"email_address": "DUP@example.org", "status": "subscribed"}
    )

    assert (status, body["title"]) == (400, "Member Exists")
    assert (
        body["detail"]
        == "DUP@example.org is already a list member. Use PUT to insert or update list members."
    )


def test_patch_updates_only_what_it_names_and_refuses_transactional(mc: Any, list_id: str) -> None:
    member = put(mc, list_id, "pat@example.org", status_if_new="subscribed", merge_fields={"FNAME": "Pat"})

    patched = mc.lists.update_list_member(
        list_id, member["id"], {"merge_fields": {"LNAME": "Doe"}, "vip": True}
    )
    assert patched["merge_fields"]["FNAME"] == "Pat"
    assert patched["merge_fields"]["LNAME"] == "Doe"
    assert patched["vip"] is True

    status, body = problem(mc.lists.update_list_member, list_id, member["id"], {"status": "transactional"})
    assert (status, body["title"]) == (400, "Invalid Resource")
    assert body["errors"][0]["field"] == "status"


def test_tags_post_answers_204_with_a_json_content_type(mc: Any, list_id: str) -> None:
    member = put(mc, list_id, "tag@example.org", status_if_new="subscribed")

    response = mc.lists.update_list_member_tags(
        list_id,
        member["id"],
        {"tags": [{"name": "VIP", "status": "active"}, {"name": "b2b", "status": "active"}]},
    )

    assert response.status_code == 204
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert [t["name"] for t in mc.lists.get_list_member_tags(list_id, member["id"])["tags"]] == ["VIP", "b2b"]
    mc.lists.update_list_member_tags(list_id, member["id"], {"tags": [{"name": "vip", "status": "inactive"}]})
    assert [t["name"] for t in mc.lists.get_list_member(list_id, member["id"])["tags"]] == ["b2b"]


def test_tags_need_name_and_status_and_a_known_member(mc: Any, list_id: str) -> None:
    member = put(mc, list_id, "tag2@example.org", status_if_new="subscribed")

    status, body = problem(mc.lists.update_list_member_tags, list_id, member["id"], {"tags": [{"name": "x"}]})
    assert (status, body["title"]) == (400, "Invalid Resource")

    status, body = problem(
        mc.lists.update_list_member_tags,
        list_id,
        subscriber_hash("nobody@example.org"),
        {"tags": [{"name": "x", "status": "active"}]},
    )
    assert (status, body["title"]) == (404, "Resource Not Found")


def test_put_applies_tags_only_when_it_creates_the_member(mc: Any, list_id: str) -> None:
    created = put(mc, list_id, "t3@example.org", status_if_new="subscribed", tags=["new"])
    updated = put(mc, list_id, "t3@example.org", status_if_new="subscribed", tags=["ignored"])

    assert [t["name"] for t in created["tags"]] == ["new"]
    assert [t["name"] for t in updated["tags"]] == ["new"]


def test_list_members_pages_filters_and_projects_fields(mc: Any, sim: MailchimpSimulator) -> None:
    list_id = sim.create_list()
    for i in range(1005):
        sim.seed_member(list_id, f"m{i:04d}@example.org")
    sim.seed_member(list_id, "u@example.org", status="unsubscribed")

    first = mc.lists.get_list_members_info(list_id)
    assert (len(first["members"]), first["total_items"]) == (10, 1006)
    page = mc.lists.get_list_members_info(
        list_id, count=5, offset=1000, fields=["members.email_address", "total_items"]
    )
    assert page == {
        "members": [{"email_address": f"m{i:04d}@example.org"} for i in range(1000, 1005)],
        "total_items": 1006,
    }
    assert len(mc.lists.get_list_members_info(list_id, count=1000)["members"]) == 1000
    unsubscribed = mc.lists.get_list_members_info(
        list_id, status="unsubscribed", exclude_fields=["members._links"]
    )
    assert unsubscribed["total_items"] == 1
    assert "_links" not in unsubscribed["members"][0]


def test_batch_subscribe_reports_each_failure_and_still_answers_200(
    mc: Any, sim: MailchimpSimulator, list_id: str
) -> None:
    put(mc, list_id, "exists@example.org", status_if_new="subscribed")
    put(mc, list_id, "optout@example.org", status_if_new="subscribed")
    sim.unsubscribe_by_contact(list_id, "optout@example.org")
    members = [
        {"email_address": "fresh@example.org", "status": "subscribed", "merge_fields": {"FNAME": "F"}},
        {"email_address": "exists@example.org", "status": "subscribed"},
        {"email_address": "not-an-email", "status": "subscribed"},
        {"email_address": "fake@mailinator.com", "status": "subscribed"},
        {
            "email_address": "addr@example.org",
            "status": "subscribed",
            "merge_fields": {"ADDRESS": {"addr1": "1 Main"}},
        },
    ]

    result = mc.lists.batch_list_members(list_id, {"members": members})

    assert (result["total_created"], result["total_updated"], result["error_count"]) == (1, 0, 4)
    assert [m["email_address"] for m in result["new_members"]] == ["fresh@example.org"]
    errors = {e["email_address"]: e for e in result["errors"]}
    assert errors["exists@example.org"]["error_code"] == "ERROR_CONTACT_EXISTS"
    assert errors["exists@example.org"]["error"] == (
        "exists@example.org is already a list member, do you want to update? please provide "
        "update_existing:true in the request body"
    )
    assert errors["not-an-email"]["error"] == "Please provide a valid email address."
    assert errors["fake@mailinator.com"]["error"] == (
        "fake@mailinator.com looks fake or invalid, please enter a real email address."
    )
    assert (errors["addr@example.org"]["field"], errors["addr@example.org"]["field_message"]) == (
        "ADDRESS",
        "Please enter a complete address",
    )
    assert {e["error_code"] for e in result["errors"]} <= {"ERROR_CONTACT_EXISTS", "ERROR_GENERIC"}

    again = mc.lists.batch_list_members(
        list_id,
        {
            "members": [
                {"email_address": "exists@example.org", "status": "pending"},
                {"email_address": "optout@example.org", "status": "subscribed"},
            ],
            "update_existing": True,
        },
    )
    assert [m["status"] for m in again["updated_members"]] == ["pending"]
    assert again["errors"][0]["email_address"] == "optout@example.org"
    assert again["errors"][0]["error_code"] == "ERROR_GENERIC"
    assert "compliance state" in again["errors"][0]["error"]


def test_errors_are_problem_json_the_sdk_surfaces_as_text(mc: Any) -> None:
    status, body = problem(mc.lists.get_list, "nolist")

    assert status == 404
    assert set(body) == {"type", "title", "status", "detail", "instance"}
    assert body["type"] == "https://mailchimp.com/developer/marketing/docs/errors/"
    assert body["detail"] == "The requested resource could not be found."


def test_key_of_another_data_center_is_api_key_invalid(server: ServerThread) -> None:
    other = sdk(server, {"api_key": US9_KEY, "server": "us9"})

    status, body = problem(other.ping.get)

    assert (status, body["title"]) == (401, "API Key Invalid")
    assert "wrong datacenter" in body["detail"]


def test_oauth_bearer_token_works_with_the_sdk(server: ServerThread) -> None:
    client = sdk(server, {"access_token": TOKEN, "server": "us6"})

    assert client.ping.get()["health_status"] == "Everything's Chimpy!"


def test_skip_merge_validation_as_the_sdk_sends_it_waives_required_fields(
    mc: Any, sim: MailchimpSimulator
) -> None:
    list_id = sim.create_list(required_merge_fields=["LNAME"])

    _, body = problem(put, mc, list_id, "req@example.org", status_if_new="subscribed")
    assert body["errors"] == [{"field": "LNAME", "message": "Please enter a value"}]

    member = mc.lists.set_list_member(
        list_id,
        subscriber_hash("req@example.org"),
        {"email_address": "req@example.org", "status_if_new": "subscribed"},
        skip_merge_validation=True,
    )
    assert member["merge_fields"]["LNAME"] == ""
