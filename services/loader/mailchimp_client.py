"""A typed adapter over httpx for the few Mailchimp calls the loader makes.

Every request goes through the key's :class:`AdaptiveLimiter` (one slot for the duration of the
HTTP exchange, never during a backoff sleep), is classified by ``errors.classify_response``, and is
retried in place when the answer is transient: exponential backoff with jitter, bounded by attempts
and by a time budget. What comes back is either an :class:`Answer` (success, or an error status the
caller asked to see), a :class:`CallFailed` (a permanent answer), or :class:`RetriesExhausted`,
which says whether Mailchimp looked down for everyone (``outage``) or only for this request.

Exceptions carry the endpoint kind, the status and Mailchimp's problem document; never a URL with
credentials or an Authorization header.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from services.loader.credentials import Target
from services.loader.errors import Verdict, classify_response, classify_transport, parse_problem
from services.loader.limiter import AdaptiveLimiter
from services.loader.metrics import REQUEST_SECONDS, REQUESTS, RETRIES, THROTTLES
from services.loader.settings import LoaderSettings
from shared.settings import MailchimpSettings

__all__ = [
    "Answer",
    "CallFailed",
    "ClientPool",
    "KeyHealth",
    "MailchimpClient",
    "MailchimpUnavailable",
    "RetriesExhausted",
    "RetryPolicy",
]

log = logging.getLogger(__name__)

_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    budget_seconds: float
    initial_seconds: float
    max_seconds: float

    @classmethod
    def from_settings(cls, settings: LoaderSettings) -> RetryPolicy:
        return cls(
            settings.max_attempts,
            settings.retry_budget_seconds,
            settings.backoff_initial_seconds,
            settings.backoff_max_seconds,
        )

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Sleep before attempt ``attempt + 1``: exponential, half of it jittered (never near zero)."""
        ceiling = min(self.max_seconds, self.initial_seconds * 2.0 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class KeyHealth:
    """When Mailchimp last gave this key a real answer (anything but a throttle or a server fault)."""

    def __init__(self) -> None:
        self.last_answer = float("-inf")

    def answered(self) -> None:
        self.last_answer = time.monotonic()

    def silent_since(self, started: float) -> bool:
        return self.last_answer < started


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer the caller handles: 2xx, or an error status it listed in ``accept``."""

    status: int
    doc: dict[str, Any] | None
    verdict: Verdict
    attempts: int

    @property
    def ok(self) -> bool:
        return self.verdict.kind == "ok"


class CallFailed(Exception):
    """Mailchimp answered with a permanent (or not-to-be-retried) error."""

    def __init__(
        self, endpoint: str, status: int, verdict: Verdict, problem: dict[str, Any] | None, attempts: int
    ):
        self.endpoint = endpoint
        self.status = status
        self.verdict = verdict
        self.problem = problem
        self.attempts = attempts
        super().__init__(f"{endpoint}: HTTP {status} {verdict.reason}: {self.detail}")

    @property
    def reason(self) -> str:
        return self.verdict.reason

    @property
    def detail(self) -> str:
        problem = self.problem or {}
        title = str(problem.get("title") or "")
        detail = str(problem.get("detail") or "")
        errors = problem.get("errors")
        if isinstance(errors, list) and errors:
            detail += " " + "; ".join(
                f"{e.get('field', '')}: {e.get('message', '')}" for e in errors[:5] if isinstance(e, dict)
            )
        return f"{title}: {detail}".strip(": ") or f"HTTP {self.status}"


class RetriesExhausted(Exception):
    """Every attempt failed transiently. ``outage``: the key got no real answer in the meantime."""

    def __init__(self, endpoint: str, cause: str, status: int | None, attempts: int, outage: bool):
        self.endpoint = endpoint
        self.cause = cause
        self.status = status
        self.attempts = attempts
        self.outage = outage
        super().__init__(f"{endpoint}: gave up after {attempts} attempts (last: {cause})")


class MailchimpUnavailable(Exception):
    """A key's requests failed for a whole retry budget and none of its other requests got an answer."""


class MailchimpClient:
    """Calls for one credential, through its data center's connection pool and its key's limiter."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        target: Target,
        limiter: AdaptiveLimiter,
        health: KeyHealth,
        policy: RetryPolicy,
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.target = target
        self.limiter = limiter
        self.health = health
        self.policy = policy
        self._rng = rng or random.Random()
        self._headers = {**_JSON_HEADERS, "Authorization": target.authorization}

    def __repr__(self) -> str:
        return f"MailchimpClient({self.target!r})"

    async def request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> Answer:
        """One API call with retries; ``accept`` lists error statuses returned instead of raised."""
        content = orjson.dumps(body) if body is not None else None
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            status, content_type, raw, verdict = await self._attempt(endpoint, method, path, content, params)
            if verdict.kind == "ok" or not verdict.retryable:
                self.health.answered()
                doc = _json_object(raw) if verdict.kind == "ok" else parse_problem(content_type, raw)
                if verdict.kind == "ok" or status in accept:
                    return Answer(status, doc, verdict, attempt)
                raise CallFailed(endpoint, status, verdict, doc, attempt)
            if verdict.kind == "throttle" or verdict.cause == "timeout":
                # A timed-out request may still hold its connection at Mailchimp: slow down as for a 429.
                self.limiter.throttled()
                if verdict.kind == "throttle":
                    THROTTLES.labels(self.target.credential, verdict.cause).inc()
            delay = self.policy.delay(attempt, self._rng)
            elapsed = time.monotonic() - started
            if attempt >= self.policy.max_attempts or elapsed + delay > self.policy.budget_seconds:
                # Down for everyone: no real answer to any request of this key during the second half
                # of this request's retries (answers to requests sent just before an outage began
                # do not count against it).
                outage = self.health.silent_since(started + elapsed / 2)
                log.warning(
                    "mailchimp request gave up",
                    extra={
                        "endpoint": endpoint,
                        "cause": verdict.cause,
                        "attempts": attempt,
                        "outage": outage,
                    },
                )
                raise RetriesExhausted(endpoint, verdict.cause, status or None, attempt, outage)
            RETRIES.labels(endpoint, verdict.cause).inc()
            await asyncio.sleep(delay)

    async def _attempt(
        self, endpoint: str, method: str, path: str, content: bytes | None, params: Mapping[str, str] | None
    ) -> tuple[int, str | None, bytes, Verdict]:
        async with self.limiter.slot():
            started = time.perf_counter()
            try:
                response = await self.http.request(
                    method, path, content=content, params=params, headers=self._headers
                )
            except httpx.TimeoutException:
                REQUESTS.labels(endpoint, method, "timeout").inc()
                return 0, None, b"", classify_transport("timeout")
            except httpx.TransportError:
                REQUESTS.labels(endpoint, method, "connection").inc()
                return 0, None, b"", classify_transport("connection")
            finally:
                REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        REQUESTS.labels(endpoint, method, str(response.status_code)).inc()
        content_type = response.headers.get("content-type")
        problem = None if response.is_success else parse_problem(content_type, response.content)
        return (
            response.status_code,
            content_type,
            response.content,
            classify_response(response.status_code, content_type, problem),
        )


def _json_object(raw: bytes) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


class ClientPool:
    """One httpx client (connection pool, keep-alive) per API base, shared by the keys it serves."""

    def __init__(self, mailchimp: MailchimpSettings, loader: LoaderSettings) -> None:
        self._timeout = httpx.Timeout(
            mailchimp.timeout_seconds, connect=min(loader.connect_timeout_seconds, mailchimp.timeout_seconds)
        )
        self._limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=max(10, 2 * mailchimp.max_in_flight)
        )
        self._clients: dict[str, httpx.AsyncClient] = {}

    def for_base(self, base_url: str) -> httpx.AsyncClient:
        client = self._clients.get(base_url)
        if client is None:
            client = httpx.AsyncClient(
                base_url=base_url, timeout=self._timeout, limits=self._limits, follow_redirects=False
            )
            self._clients[base_url] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
