"""The audit HTTP API over a real port: token, filters, paging, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate
from pydantic import SecretStr

from services.audit.api import create_api
from services.audit.app import AuditService
from services.audit.settings import AuditServiceSettings
from services.audit.store import AuditStore
from shared.events import Event
from shared.settings import KafkaSettings
from shared.topics import CUSTOMER_CHANGED
from simulators._server import ServerThread
from tests.audit.factories import Flow, Records

TOKEN = "s3cret-audit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DATA_ROUTES = [
    "/status",
    "/failures",
    "/runs",
    "/reconcile",
    "/events",
    "/customers/000123/timeline",
]


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStore]:
    """Seven customers: 000120-000126; odd ones synced, even ones failed (two reasons), one rejected."""
    store = AuditStore.open(f"sqlite:///{tmp_path_factory.mktemp('api') / 'audit.db'}")
    flow, recs = Flow(), Records()
    batch: list[Event] = []
    for i in range(7):
        change = flow.change(f"00012{i}")
        command = flow.command(change)
        if i % 2:
            batch += [change, command, flow.synced(command)]
        else:
            batch += [
                change,
                command,
                flow.failed(command, reason="invalid_resource" if i < 4 else "compliance"),
            ]
    bad = flow.change("000999", email="not-an-email")
    batch += [bad, flow.rejected(bad), flow.run_completed(created=8)]
    store.append([*recs.many(batch), recs.raw(CUSTOMER_CHANGED.name, b"garbage", key=b"acme:000777")])
    yield store
    store.close()


@pytest.fixture(scope="module")
def api(populated: AuditStore) -> Iterator[str]:
    with ServerThread(create_api(lambda: populated.engine, SecretStr(TOKEN))) as server:
        yield server.url


def test_requests_without_or_with_a_wrong_token_are_refused(api: str) -> None:
    with httpx.Client(base_url=api) as client:
        for route in DATA_ROUTES:
            assert client.get(route).status_code == 401, route
            assert client.get(route, headers={"Authorization": "Bearer wrong"}).status_code == 401, route
            assert client.get(route, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401, route
            response = client.get(route, headers=AUTH)
            assert response.status_code == 200, (route, response.text)
        assert client.get("/status").headers["www-authenticate"] == "Bearer"


def test_openapi_document_and_docs_are_served(api: str) -> None:
    with httpx.Client(base_url=api) as client:
        document = client.get("/openapi.json").json()
        docs = client.get("/docs")
    validate(document)
    assert set(DATA_ROUTES[:-1]) <= set(document["paths"])
    assert "/customers/{customer}/timeline" in document["paths"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_status_filters_by_status_and_reason_and_pages(api: str) -> None:
    with httpx.Client(base_url=api, headers=AUTH) as client:
        failed = client.get("/status", params={"status": "failed"}).json()
        assert sorted(s["customer"] for s in failed["items"]) == ["000120", "000122", "000124", "000126"]
        first = client.get(
            "/status", params={"status": "failed", "reason": "invalid_resource", "limit": 1}
        ).json()
        assert first["next_offset"] == 1
        second = client.get(
            "/status", params={"status": "failed", "reason": "invalid_resource", "limit": 1, "offset": 1}
        ).json()
        assert second["next_offset"] is None
        assert [first["items"][0]["customer"], second["items"][0]["customer"]] == ["000122", "000120"]
        both = client.get("/status", params=[("status", "rejected"), ("status", "in_sync")]).json()
        assert sorted(s["status"] for s in both["items"]) == ["in_sync", "in_sync", "in_sync", "rejected"]
        assert client.get("/status", params={"connection": "other"}).json()["items"] == []
        assert client.get("/status", params={"limit": 0}).status_code == 422


def test_status_filters_by_time_range(api: str) -> None:
    with httpx.Client(base_url=api, headers=AUTH) as client:
        everything = client.get("/status", params={"limit": 100}).json()["items"]
        times = sorted(s["updated_at"] for s in everything)
        middle = times[len(times) // 2]
        later = client.get("/status", params={"since": middle}).json()["items"]
        earlier = client.get("/status", params={"until": middle}).json()["items"]
    assert all(s["updated_at"] >= middle for s in later) and all(s["updated_at"] < middle for s in earlier)
    assert len(later) + len(earlier) == len(everything)


def test_timeline_chains_the_customer_with_the_mailchimp_response(api: str) -> None:
    with httpx.Client(base_url=api, headers=AUTH) as client:
        line = client.get("/customers/000122/timeline", params={"connection": "acme"}).json()
    assert [(e["event_type"], e["depth"]) for e in line["entries"]] == [
        ("CustomerChanged", 0),
        ("MailchimpMemberUpsert", 1),
        ("MemberSyncFailed", 2),
    ]
    assert line["entries"][2]["response"]["status"] == 400
    assert line["states"][0]["status"] == "failed"
    assert line["runs"][0]["status"] == "completed"


def test_failures_runs_reconcile_and_events_answer(api: str) -> None:
    with httpx.Client(base_url=api, headers=AUTH) as client:
        failures = client.get("/failures").json()
        runs = client.get("/runs").json()["items"]
        run = client.get(f"/runs/{runs[0]['run_id']}").json()
        missing_run = client.get("/runs/nope")
        reconcile = client.get("/reconcile", params={"audience": "retail"}).json()
        undecodable = client.get("/events", params={"kind": "undecodable"}).json()["items"]
    assert {(g["status"], g["reason"], g["count"]) for g in failures} == {
        ("failed", "invalid_resource", 2),
        ("failed", "compliance", 2),
        ("rejected", "invalid_email", 1),
        ("undecodable", "not_json", 1),
    }
    assert (run["changes"], run["commands"], run["synced"], run["failed"]) == (8, 7, 3, 4)
    assert missing_run.status_code == 404
    assert reconcile[0]["missing_count"] == 5 and reconcile[0]["members_synced"] == 3
    assert [(e["customer"], e["reason"]) for e in undecodable] == [("000777", "not_json")]


def test_without_a_token_the_service_serves_the_api_only_when_told_it_is_insecure(tmp_path: Path) -> None:
    kafka = KafkaSettings()
    closed = AuditService(kafka, AuditServiceSettings(db_url=f"sqlite:///{tmp_path / 'a.db'}"), "t")
    opened = AuditService(
        kafka, AuditServiceSettings(db_url=f"sqlite:///{tmp_path / 'a.db'}", api_insecure=True), "t"
    )
    with ServerThread(closed.http_app()) as server:
        response = httpx.get(f"{server.url}/status")
        assert response.status_code == 503 and "MLC_AUDIT_API_TOKEN" in response.json()["detail"]
    with ServerThread(opened.http_app()) as server:
        # No token needed; the store is not open because the service was never started.
        assert httpx.get(f"{server.url}/status").status_code == 503
        assert httpx.get(f"{server.url}/openapi.json").status_code == 200
    assert closed.readiness()[1]["api"] == "disabled" and opened.readiness()[1]["api"] == "enabled"
