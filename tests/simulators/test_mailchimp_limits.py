"""The Mailchimp simulator's connection limit and injected faults, over real concurrent HTTP.

Latency is served while the request holds its connection slot, so "more than 10 in flight" is produced
by real overlapping requests, not by a counter the test sets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from simulators._server import ServerThread
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator

KEY = "0123456789abcdef0123456789abcdef-us6"
OTHER_KEY = "00112233445566778899aabbccddeeff-us6"


@contextmanager
def running(**config: Any) -> Iterator[tuple[MailchimpSimulator, str]]:
    sim = MailchimpSimulator(MailchimpSimConfig(api_keys=[KEY, OTHER_KEY], **config))
    with ServerThread(sim.app) as srv:
        yield sim, f"{srv.url}/3.0"


async def ping_many(url: str, n: int, key: str = KEY) -> list[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, auth=("u", key), limits=limits, timeout=10) as client:
        responses = await asyncio.gather(*(client.get("/ping") for _ in range(n)))
    return [r.status_code for r in responses]


async def test_requests_over_ten_in_flight_per_key_get_429_and_are_counted() -> None:
    with running(latency_ms={"ping": 1000}) as (sim, url):
        statuses = await ping_many(url, 20)
        stats = sim.stats

    assert sorted(statuses) == [200] * 10 + [429] * 10
    assert stats.max_concurrency_for(KEY) == 10
    assert stats.throttled_for(KEY) == 10
    assert stats.count("ping", 429) == 10


async def test_429_body_is_the_documented_problem_without_retry_after() -> None:
    with running(max_connections=1, latency_ms={"ping": 500}) as (_, url):
        async with httpx.AsyncClient(base_url=url, auth=("u", KEY), timeout=10) as client:
            responses = await asyncio.gather(client.get("/ping"), client.get("/ping"))
    refused = max(responses, key=lambda r: r.status_code)

    assert sorted(r.status_code for r in responses) == [200, 429]
    assert refused.headers["content-type"] == "application/problem+json; charset=utf-8"
    assert refused.json()["title"] == "Too Many Requests"
    assert refused.json()["detail"] == "You have exceeded the limit of 1 simultaneous connections."
    assert "retry-after" not in refused.headers


async def test_the_limit_is_per_key() -> None:
    with running(latency_ms={"ping": 800}) as (_, url):
        own, other = await asyncio.gather(ping_many(url, 10), ping_many(url, 10, OTHER_KEY))

    assert own == [200] * 10
    assert other == [200] * 10


@pytest.mark.parametrize("mode", ["403", "503"])
async def test_throttle_can_surface_as_bare_403_or_html_503(mode: str) -> None:
    with running(throttle_mode=mode, latency_ms={"ping": 800}) as (sim, url):
        statuses = await ping_many(url, 12)
        sim.set_faults(latency_ms={})
        async with httpx.AsyncClient(base_url=url, auth=("u", KEY)) as client:
            sim.queue_faults(mode)  # type: ignore[arg-type]
            queued = await client.get("/ping")

    assert sorted(statuses) == [200] * 10 + [int(mode)] * 2
    assert sim.stats.throttled_for(KEY) == 2
    if mode == "403":
        assert queued.content == b""
        assert "content-type" not in queued.headers
    else:
        assert queued.headers["content-type"].startswith("text/html")
        assert b"Request Blocked" in queued.content


def test_error_rate_injects_500_problem_json() -> None:
    with running(error_rate=1.0) as (sim, url), httpx.Client(base_url=url, auth=("u", KEY)) as client:
        response = client.get("/ping")

    assert response.status_code == 500
    assert response.json()["title"] == "Internal Server Error"
    assert response.json()["instance"] == response.headers["x-request-id"]
    assert sim.stats.count("ping", 500) == 1


def test_latency_is_per_endpoint_kind() -> None:
    with (
        running(latency_ms={"member_get": 400}) as (sim, url),
        httpx.Client(base_url=url, auth=("u", KEY)) as client,
    ):
        list_id = sim.create_list()
        sim.seed_member(list_id, "a@example.org")
        started = time.monotonic()
        client.get("/ping")
        ping_seconds = time.monotonic() - started
        started = time.monotonic()
        client.get(f"/lists/{list_id}/members/a@example.org")
        get_seconds = time.monotonic() - started

    assert get_seconds >= 0.4
    assert ping_seconds < 0.4


def test_timeout_holds_the_slot_then_answers_504() -> None:
    with (
        running(max_connections=1, timeout_rate=1.0, timeout_seconds=0.6) as (sim, url),
        httpx.Client(base_url=url, auth=("u", KEY), timeout=5) as client,
        httpx.Client(base_url=url, auth=("u", KEY), timeout=0.2) as impatient,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            impatient.get("/ping")
        blocked = client.get("/ping")
        sim.set_faults(timeout_rate=0.0)
        deadline = time.monotonic() + 5
        while (after := client.get("/ping")).status_code == 429 and time.monotonic() < deadline:
            pass
        waited = time.monotonic() - started

    assert blocked.status_code == 429
    assert after.status_code == 200
    assert waited >= 0.6
    assert sim.stats.count("ping", 504) == 1


def test_timeout_in_drop_mode_cuts_the_connection() -> None:
    with (
        running(timeout_rate=1.0, timeout_seconds=0.1, timeout_mode="drop") as (sim, url),
        httpx.Client(base_url=url, auth=("u", KEY), timeout=5) as client,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        client.get("/ping")

    assert sim.stats.count("ping", 0) == 1


def test_queued_faults_hit_only_their_kind_in_order() -> None:
    with running() as (sim, url), httpx.Client(base_url=url, auth=("u", KEY)) as client:
        list_id = sim.create_list()
        sim.queue_faults("429", "500", kind="member_put")
        body = {"email_address": "q@example.org", "status_if_new": "subscribed"}
        statuses = [client.get("/ping").status_code]
        statuses += [
            client.put(f"/lists/{list_id}/members/q@example.org", json=body).status_code for _ in range(3)
        ]

    assert statuses == [200, 429, 500, 200]
    assert sim.stats.throttled_total == 0


def test_reset_stats_zeroes_the_counters() -> None:
    with running() as (sim, url), httpx.Client(base_url=url, auth=("u", KEY)) as client:
        client.get("/ping")
        sim.reset_stats()

        assert sim.stats.total_calls == 0
        assert sim.request_log() == []
