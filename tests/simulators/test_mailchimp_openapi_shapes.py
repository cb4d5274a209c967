"""Shapes of the Mailchimp simulator's requests and answers, checked against the official OpenAPI spec.

The spec (v3.0.55, an openapi-generator conversion) lives outside the repository; these tests skip with a
reason when it is absent. Point ``MLC_MAILCHIMP_OPENAPI`` at it, or keep it in ``../shared/reference/``
relative to the repository root.

Three known artefacts of the conversion are patched before validating, each against real behaviour the
reference documents: merge field values are typed ``object`` (real values are strings, or an object for
ADDRESS); ``List_Members_2.members`` refers to itself instead of to a member; and the member ``status``
enum lacks ``archived``, which real answers carry for archived members (the spec's own status filter
lists it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from simulators._server import ServerThread
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator, subscriber_hash

KEY = "0123456789abcdef0123456789abcdef-us6"
SPEC_NAME = "mailchimp-openapi-3.0.55.yaml"
SPEC_URI = "urn:mailchimp-openapi"
REPO_ROOT = Path(__file__).resolve().parents[2]


def spec_path() -> Path:
    configured = os.environ.get("MLC_MAILCHIMP_OPENAPI")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "reference" / SPEC_NAME


def _strip_examples(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _strip_examples(value) for key, value in node.items() if key != "example"}
    if isinstance(node, list):
        return [_strip_examples(item) for item in node]
    return node


def _patched(schemas: dict[str, Any]) -> None:
    def relax_merge_fields(node: Any) -> None:
        if isinstance(node, dict):
            merge_fields = node.get("properties", {}).get("merge_fields")
            if isinstance(merge_fields, dict) and isinstance(merge_fields.get("additionalProperties"), dict):
                merge_fields["additionalProperties"].pop("type", None)
            for value in node.values():
                relax_merge_fields(value)
        elif isinstance(node, list):
            for item in node:
                relax_merge_fields(item)

    relax_merge_fields(schemas)
    schemas["List_Members_2"]["properties"]["members"]["items"] = {
        "$ref": "#/components/schemas/List_Members"
    }
    schemas["List_Members"]["properties"]["status"]["enum"].append("archived")


class Spec:
    """The spec's component schemas as JSON Schema validators."""

    def __init__(self, path: Path) -> None:
        with path.open("rb") as handle:
            document = _strip_examples(yaml.load(handle, Loader=yaml.CSafeLoader))
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        _patched(self.schemas)
        resource = Resource.from_contents(document, default_specification=DRAFT7)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)

    def check(self, name: str, instance: Any) -> None:
        schema = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
        jsonschema.Draft7Validator(schema, registry=self._registry).validate(instance)

    def properties(self, name: str) -> set[str]:
        return set(self.schemas[name]["properties"])


@pytest.fixture(scope="module")
def spec() -> Spec:
    path = spec_path()
    if not path.is_file():
        pytest.skip(f"Mailchimp OpenAPI spec not found at {path}; set MLC_MAILCHIMP_OPENAPI to its path")
    return Spec(path)


@pytest.fixture(scope="module")
def sim() -> MailchimpSimulator:
    return MailchimpSimulator(MailchimpSimConfig(api_keys=[KEY]))


@pytest.fixture(scope="module")
def http(sim: MailchimpSimulator) -> Iterator[httpx.Client]:
    with ServerThread(sim.app) as srv, httpx.Client(base_url=f"{srv.url}/3.0", auth=("u", KEY)) as client:
        yield client


@pytest.fixture
def list_id(sim: MailchimpSimulator) -> str:
    return sim.create_list()


def sent(spec: Spec, schema: str, body: dict[str, Any]) -> dict[str, Any]:
    """A request body, checked against the spec before it is sent."""
    spec.check(schema, body)
    return body


ADDRESS = {"addr1": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701", "country": "US"}


def test_member_answers_match_list_members_and_carry_every_documented_field(
    spec: Spec, http: httpx.Client, list_id: str
) -> None:
    put_body = sent(
        spec,
        "Add_List_Members_2",
        {
            "email_address": "shape@example.org",
            "status_if_new": "subscribed",
            "email_type": "html",
            "merge_fields": {"FNAME": "Ada", "ADDRESS": ADDRESS},
            "language": "en",
            "vip": False,
            "location": {"latitude": 1.5, "longitude": 2.5},
            "ip_signup": "10.0.0.1",
        },
    )
    post_body = sent(
        spec,
        "Add_List_Members_1",
        {
            "email_address": "posted@example.org",
            "status": "pending",
            "tags": ["a", "b"],
            "merge_fields": {"LNAME": "B"},
        },
    )
    patch_body = sent(
        spec, "Add_List_Members_3", {"status": "unsubscribed", "merge_fields": {"PHONE": "555-0100"}}
    )

    answers = [
        http.put(f"/lists/{list_id}/members/{subscriber_hash('shape@example.org')}", json=put_body),
        http.post(f"/lists/{list_id}/members", json=post_body),
        http.patch(f"/lists/{list_id}/members/shape@example.org", json=patch_body),
        http.get(f"/lists/{list_id}/members/posted@example.org"),
    ]

    documented = spec.properties("List_Members") - {"last_note"}
    for answer in answers:
        assert answer.status_code == 200, answer.text
        spec.check("List_Members", answer.json())
        assert documented <= set(answer.json()), documented - set(answer.json())


def test_member_collection_and_archived_members_match(
    spec: Spec, http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    for i in range(3):
        sim.seed_member(list_id, f"c{i}@example.org", merge_fields={"FNAME": f"C{i}"})
    http.delete(f"/lists/{list_id}/members/c0@example.org")

    for params in ({}, {"status": "archived"}, {"count": 1, "offset": 1}):
        page = http.get(f"/lists/{list_id}/members", params=params).json()
        spec.check("List_Members_2", page)
        assert page["members"]


def test_batch_request_and_answer_match(
    spec: Spec, http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    sim.seed_member(list_id, "old@example.org")
    body = sent(
        spec,
        "Members_to_Subscribe_Unsubscribe_to_from_a_List_in_batch",
        {
            "members": [
                {
                    "email_address": "n1@example.org",
                    "status": "subscribed",
                    "merge_fields": {"ADDRESS": ADDRESS},
                },
                {"email_address": "old@example.org", "status": "subscribed"},
                {"email_address": "broken", "status": "subscribed"},
            ],
            "update_existing": False,
            "sync_tags": False,
        },
    )

    answer = http.post(f"/lists/{list_id}", json=body).json()

    spec.check("Batch_update_List_members", answer)
    assert set(answer) == spec.properties("Batch_update_List_members")
    assert answer["error_count"] == 2


def test_tags_request_and_collection_match(
    spec: Spec, http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    sim.seed_member(list_id, "t@example.org")
    body = sent(spec, "Member_Tags", {"tags": [{"name": "vip", "status": "active"}], "is_syncing": False})

    posted = http.post(f"/lists/{list_id}/members/{subscriber_hash('t@example.org')}/tags", json=body)
    tags = http.get(f"/lists/{list_id}/members/{subscriber_hash('t@example.org')}/tags").json()

    assert posted.status_code == 204
    spec.check("Collection_of_Tags", tags)
    assert [t["name"] for t in tags["tags"]] == ["vip"]


def test_account_and_audience_answers_match(spec: Spec, http: httpx.Client, list_id: str) -> None:
    merge_field = sent(
        spec, "Merge_Field_1", {"name": "Account", "type": "text", "tag": "ACCT", "required": False}
    )

    spec.check("API_health_status", http.get("/ping").json())
    spec.check("Subscriber_Lists", http.get("/lists").json())
    spec.check("Subscriber_List", http.get(f"/lists/{list_id}").json())
    spec.check("Merge_Field", http.post(f"/lists/{list_id}/merge-fields", json=merge_field).json())
    spec.check("Collection_of_Merge_Fields", http.get(f"/lists/{list_id}/merge-fields").json())


def test_error_answers_match_the_problem_detail_document(
    spec: Spec, http: httpx.Client, sim: MailchimpSimulator, list_id: str
) -> None:
    sim.seed_member(list_id, "e@example.org")
    errors = [
        http.get("/lists/none"),
        http.get("/ping", auth=("u", "0" * 32 + "-us6")),
        http.put(
            f"/lists/{list_id}/members/{subscriber_hash('x@example.org')}",
            json={"status_if_new": "subscribed"},
        ),
        http.post(
            f"/lists/{list_id}/members", json={"email_address": "e@example.org", "status": "subscribed"}
        ),
        http.put(f"/lists/{list_id}/members/{subscriber_hash('e@example.org')}/tags", json={}),
    ]
    sim.queue_faults("429")
    errors.append(http.get("/ping"))

    assert [e.status_code for e in errors] == [404, 401, 400, 400, 405, 429]
    for error in errors:
        spec.check("Problem_Detail_Document", error.json())
