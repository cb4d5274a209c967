"""The SYSPRO OData adapter: one typed wrapper over httpx for one connection's service root.

What it guarantees to callers:

- transient trouble (5xx, 429, timeouts, refused or dropped connections, a 200 whose body is not the JSON
  page it should be) is retried with exponential backoff and jitter, at most ``max_attempts`` times, then
  raised as ``Unreachable`` / ``ServerError`` / ``BadResponse``;
- a 401/403 re-reads the credential from the encrypted store and retries the request once (a rotated
  password or an expired IIS session recovers without a gap); refused again, it raises ``AuthRefused``;
- 400/404 are the query's or the configuration's fault and are not retried (``QueryRejected``);
- nothing it raises or logs carries a password (auth travels in a header; messages name paths only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from services.poller.errors import (
    AuthRefused,
    BadResponse,
    CredentialUnavailable,
    QueryRejected,
    ServerError,
    Unreachable,
)
from services.poller.metadata import EntityMetadata, parse_metadata
from services.poller.metrics import AUTH_REFUSALS, ODATA_REQUESTS
from services.poller.odata_query import check_identifier, encode_query
from shared.credentials import CredentialError

__all__ = ["CredentialProvider", "ODataClient", "Page", "RetryPolicy"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CredentialProvider = Callable[[], tuple[str, SecretStr]]
"""Returns (operator, OData password), read afresh from the credential store on each call."""


class _Transient(Exception):
    """A failure worth retrying; ``kind`` picks the error raised once retries run out."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_seconds: float = 0.5
    max_seconds: float = 30.0

    def backoff(self) -> wait_exponential_jitter:
        """initial, 2x, 4x ... capped at ``max_seconds``, each plus up to ``initial_seconds`` of jitter."""
        return wait_exponential_jitter(
            multiplier=self.initial_seconds, jitter=self.initial_seconds, max=self.max_seconds
        )


@dataclass(frozen=True)
class Page:
    """One response's rows and, when the server paged it, where the rest is."""

    rows: list[dict[str, Any]]
    next_link: str | None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _odata_message(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
        message = body["error"]["message"]
        return str(message)[:300]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


class ODataClient:
    """Reads one entity set of one SYSPRO OData service root."""

    def __init__(
        self,
        root_url: str,
        entity_set: str,
        credentials: CredentialProvider,
        *,
        connection_id: str,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.root_url = root_url.rstrip("/")
        self.entity_set = check_identifier(entity_set)
        self.connection_id = connection_id
        self.retry = retry or RetryPolicy()
        self._backoff = self.retry.backoff()
        self.requests = 0
        self._credentials = credentials
        self._auth: httpx.BasicAuth | None = None
        self._operator = ""
        root = httpx.URL(self.root_url)
        self._origin = (root.scheme, root.host, root.port)
        self._http = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            headers={"Accept": "application/json", "OData-MaxVersion": "4.0"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # ----- public reads ------------------------------------------------------------------------------

    async def check_service(self) -> EntityMetadata:
        """``GET {root}`` and ``GET {root}/$metadata``: the service answers and offers the entity set."""
        await self._get(self.root_url + "/", self._json_body)
        return await self._get(
            self.root_url + "/$metadata", lambda r: parse_metadata(r.content, self.entity_set)
        )

    async def query(self, params: Sequence[tuple[str, str]]) -> Page:
        """One request of the entity set with these system query options."""
        return await self._get(f"{self.root_url}/{self.entity_set}?{encode_query(params)}", self._page)

    async def follow(self, next_link: str) -> Page:
        """Follow an ``@odata.nextLink``, but only to the configured service (credentials go along)."""
        url = httpx.URL(next_link)
        if not url.is_absolute_url:
            url = httpx.URL(self.root_url + "/").join(next_link)
        if (url.scheme, url.host, url.port) != self._origin:
            raise BadResponse("@odata.nextLink points away from the configured OData service")
        return await self._get(str(url), self._page)

    # ----- plumbing ----------------------------------------------------------------------------------

    @staticmethod
    def _json_body(response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise _Transient("malformed", "response is not valid JSON") from None

    def _page(self, response: httpx.Response) -> Page:
        body = self._json_body(response)
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            raise _Transient("malformed", "response has no 'value' array of rows")
        link = body.get("@odata.nextLink")
        return Page(value, link if isinstance(link, str) and link else None)

    def _load_auth(self) -> httpx.BasicAuth:
        try:
            operator, password = self._credentials()
        except CredentialError as exc:
            raise CredentialUnavailable(str(exc)) from None
        self._operator = operator
        return httpx.BasicAuth(operator, password.get_secret_value())

    def _count(self, status: str) -> None:
        self.requests += 1
        ODATA_REQUESTS.labels(self.connection_id, status).inc()

    async def _send(self, url: str) -> httpx.Response:
        try:
            response = await self._http.get(url, auth=self._auth or self._load_auth())
        except httpx.TimeoutException:
            self._count("timeout")
            raise _Transient("unreachable", "request timed out") from None
        except httpx.TransportError as exc:
            self._count("transport_error")
            raise _Transient("unreachable", f"connection failed ({type(exc).__name__})") from None
        self._count(str(response.status_code))
        return response

    async def _authorised(self, url: str) -> httpx.Response:
        if self._auth is None:
            self._auth = self._load_auth()
        response = await self._send(url)
        if response.status_code in (401, 403):
            AUTH_REFUSALS.labels(self.connection_id, "odata").inc()
            log.info(
                "OData refused the credentials; re-reading them and retrying once",
                extra={"connection": self.connection_id, "status": response.status_code},
            )
            self._auth = self._load_auth()
            response = await self._send(url)
            if response.status_code in (401, 403):
                AUTH_REFUSALS.labels(self.connection_id, "odata").inc()
                raise AuthRefused(
                    f"SYSPRO OData refused operator {self._operator!r} (HTTP {response.status_code}) after "
                    "re-reading the credential: check the operator's OData password in the credential store"
                )
        return response

    async def _attempt(self, url: str, parse: Callable[[httpx.Response], T]) -> T:
        response = await self._authorised(url)
        status = response.status_code
        if status == 200:
            try:
                return parse(response)
            except _Transient:
                ODATA_REQUESTS.labels(self.connection_id, "malformed").inc()
                raise
        if status == 429 or status >= 500:
            raise _Transient("server_error", f"HTTP {status}", _retry_after(response))
        if status in (400, 404):
            raise QueryRejected(f"HTTP {status} for {httpx.URL(url).path}: {_odata_message(response)}")
        raise BadResponse(f"unexpected HTTP {status} for {httpx.URL(url).path}")

    def _wait(self, state: RetryCallState) -> float:
        base = self._backoff(state)
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return max(base, min(exc.retry_after, self.retry.max_seconds))
        return base

    async def _get(self, url: str, parse: Callable[[httpx.Response], T]) -> T:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retry.max_attempts),
                wait=self._wait,
                retry=retry_if_exception_type(_Transient),
                reraise=True,
            ):
                with attempt:
                    return await self._attempt(url, parse)
        except _Transient as exc:
            error = {"unreachable": Unreachable, "server_error": ServerError}.get(exc.kind, BadResponse)
            raise error(
                f"{exc} for {httpx.URL(url).path} after {self.retry.max_attempts} attempt(s)"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")
