"""The SYSPRO e.net REST adapter, used for one thing: checking at start-up that the operator can log on.

e.net answers everything with HTTP 200; a body starting ``ERROR`` is its "no". Sessions are scarce
(one per operator, a licence seat each), so the check is log on -> ``GetLogonProfile`` -> log off, the
log-off in ``finally``. A refused logon re-reads the credential and tries once more; an evicted or
expired session logs on again once. Credentials and the session id travel in the query string, so URLs
are never logged or put in errors.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from services.poller.metrics import AUTH_REFUSALS
from services.poller.syspro_client import RetryPolicy
from shared.credentials import CredentialError
from shared.logging import redact

__all__ = ["EnetClient", "EnetCredentials", "EnetRefused", "LogonCheck", "unwrap_body"]

log = logging.getLogger(__name__)

_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_STRING_WRAPPER = re.compile(r"^<string[^>]*>(.*)</string>$", re.DOTALL)


@dataclass(frozen=True)
class EnetCredentials:
    operator: str
    password: SecretStr = field(repr=False)
    company_id: str
    company_password: SecretStr = field(default_factory=lambda: SecretStr(""), repr=False)


EnetCredentialProvider = Callable[[], EnetCredentials]


@dataclass(frozen=True)
class LogonCheck:
    """The outcome of the start-up logon check, as shown in readiness."""

    ok: bool
    detail: str
    profile: dict[str, str] = field(default_factory=dict)


class EnetRefused(Exception):
    """e.net answered ``ERROR...``; the message is e.net's text (it holds no secrets we sent)."""


class _Transient(Exception):
    pass


class _RedactEnetQueries(logging.Filter):
    """Hides the query string of e.net URLs in httpx's own request log lines (they carry passwords and
    session ids), whatever level the deployment logs httpx at."""

    def __init__(self) -> None:
        super().__init__()
        self.prefixes: set[str] = set()

    def _clean(self, arg: object) -> object:
        text = str(arg) if isinstance(arg, httpx.URL) else arg
        if isinstance(text, str) and "?" in text and any(text.startswith(p) for p in self.prefixes):
            return text.split("?", 1)[0] + "?<redacted>"
        return arg

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and self.prefixes:
            record.args = tuple(self._clean(a) for a in record.args)
        return True


_HTTPX_FILTER = _RedactEnetQueries()
logging.getLogger("httpx").addFilter(_HTTPX_FILTER)


def unwrap_body(raw: bytes) -> str:
    """The text of an e.net answer: cp1252, trimmed, without JSON quotes or a WCF ``<string>`` wrapper."""
    text = raw.decode("cp1252", errors="replace").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    wrapped = _STRING_WRAPPER.match(text)
    if wrapped:
        text = wrapped.group(1).strip()
    return text


def parse_profile(text: str) -> dict[str, str]:
    """``GetLogonProfile`` XML (declared Windows-1252, already decoded) as a flat dict of its fields."""
    try:
        root = ET.fromstring(_DECLARATION.sub("", text, count=1))  # noqa: S314 - configured server, small doc
    except ET.ParseError as exc:
        raise EnetRefused(f"logon profile is not XML ({exc})") from None
    return {child.tag: (child.text or "").strip() for child in root}


class EnetClient:
    def __init__(
        self,
        base_url: str,
        credentials: EnetCredentialProvider,
        *,
        connection_id: str,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        _HTTPX_FILTER.prefixes.add(str(httpx.URL(self.base_url)))
        self.connection_id = connection_id
        self.retry = retry or RetryPolicy()
        self._credentials = credentials
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, operation: str, params: dict[str, str]) -> str:
        """One e.net call, retried on transport trouble and 5xx; returns the unwrapped body text."""
        url = f"{self.base_url}/{operation}"

        async def once() -> str:
            try:
                response = await self._http.get(url, params=params)
            except httpx.TransportError as exc:
                raise _Transient(f"{operation}: connection failed ({type(exc).__name__})") from None
            if response.status_code >= 500 or response.status_code == 429:
                raise _Transient(f"{operation}: HTTP {response.status_code}")
            if response.status_code != 200:
                raise EnetRefused(f"{operation}: HTTP {response.status_code}")
            return unwrap_body(response.content)

        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self.retry.backoff(),
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        ):
            with attempt:
                return await once()
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _logon_once(self, creds: EnetCredentials) -> str:
        body = await self._call(
            "Logon",
            {
                "Operator": creds.operator,
                "OperatorPassword": creds.password.get_secret_value(),
                "CompanyId": creds.company_id,
                "CompanyPassword": creds.company_password.get_secret_value(),
            },
        )
        if body.upper().startswith("ERROR") or not body:
            AUTH_REFUSALS.labels(self.connection_id, "enet").inc()
            raise EnetRefused(redact(body[:300]) or "empty logon answer")
        return body

    async def logon(self) -> str:
        """A session id; a refused logon re-reads the credential and tries once more."""
        try:
            return await self._logon_once(self._credentials())
        except EnetRefused:
            log.info(
                "e.net refused the logon; re-reading the credential and retrying once",
                extra={"connection": self.connection_id},
            )
            return await self._logon_once(self._credentials())

    async def logoff(self, user_id: str) -> None:
        body = await self._call("Logoff", {"UserId": user_id})
        if body.upper().startswith("ERROR"):
            raise EnetRefused(redact(body[:300]))

    async def check_logon(self) -> LogonCheck:
        """Log on, read the logon profile, log off (always). Never raises for SYSPRO's answers."""
        try:
            creds = self._credentials()
            user_id = await self.logon()
        except (EnetRefused, CredentialError) as exc:
            return LogonCheck(False, f"logon refused: {exc}")
        except _Transient as exc:
            return LogonCheck(False, f"unreachable: {exc}")
        session = [user_id]
        try:
            try:
                text = await self._call("GetLogonProfile", {"UserId": session[0]})
                if text.upper().startswith("ERROR"):
                    # Evicted by another logon of the operator, or idle-expired: log on again once.
                    AUTH_REFUSALS.labels(self.connection_id, "enet").inc()
                    session[0] = await self.logon()
                    text = await self._call("GetLogonProfile", {"UserId": session[0]})
                    if text.upper().startswith("ERROR"):
                        raise EnetRefused(redact(text[:300]))
                profile = parse_profile(text)
            except (EnetRefused, CredentialError) as exc:
                return LogonCheck(False, f"logon profile refused: {exc}")
            except _Transient as exc:
                return LogonCheck(False, f"unreachable: {exc}")
            operator = profile.get("OperatorCode", "")
            return LogonCheck(
                True,
                f"operator {operator or creds.operator} logged on to {profile.get('CompanyName', '?')}",
                profile,
            )
        finally:
            try:
                await self.logoff(session[0])
            except (EnetRefused, _Transient) as exc:
                log.warning(
                    "e.net log-off failed", extra={"connection": self.connection_id, "error": str(exc)}
                )
