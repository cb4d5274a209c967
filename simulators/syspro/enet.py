"""e.net Solutions REST (``/SYSPROWCFService/Rest``): logon sessions, licence seats, logon profile.

Everything answers HTTP 200, failures included: a body starting ``ERROR`` is how e.net says no. One
session per operator (a second logon ends the first), a limited number of licence seats, optional idle
expiry and a call budget per session are the traits a client has to survive.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from simulators.syspro.config import SysproSimConfig
from simulators.syspro.stats import SimStats

__all__ = ["EnetService", "EnetSession"]

_SERVER = {"Server": "Microsoft-HTTPAPI/2.0"}
_LOGON_PARAMS = ("Operator", "OperatorPassword", "CompanyId", "CompanyPassword")


@dataclass
class EnetSession:
    user_id: str
    operator: str
    created: float
    last_used: float
    calls: int = 0


def _octets(text: str, encoding: str = "cp1252") -> Response:
    """e.net answers every call as a raw stream, so the content type never says what is inside."""
    return Response(
        text.encode(encoding, errors="replace"), media_type="application/octet-stream", headers=_SERVER
    )


def _new_user_id() -> str:
    """34 upper-case hex characters followed by two spaces, the shape real e.net hands out."""
    return secrets.token_hex(17).upper() + "  "


class EnetService:
    """Session table and request handling for the e.net REST endpoints."""

    def __init__(
        self,
        config: SysproSimConfig,
        stats: SimStats,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.config = config
        self.stats = stats
        self.clock = clock
        self.today = today
        self._lock = threading.Lock()
        self._sessions: dict[str, EnetSession] = {}

    # ----- session table -----------------------------------------------------------------------------

    def _expired(self, session: EnetSession, now: float) -> bool:
        idle = self.config.session_idle_seconds
        limit = self.config.session_max_calls
        return (idle is not None and now - session.last_used > idle) or (
            limit is not None and session.calls >= limit
        )

    def _purge(self, now: float) -> None:
        for user_id in [u for u, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[user_id]

    def active_sessions(self) -> list[EnetSession]:
        with self._lock:
            self._purge(self.clock())
            return list(self._sessions.values())

    def expire_all(self) -> int:
        """End every session, as an e.net service restart would; returns how many there were."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
            return count

    def logon(self, params: dict[str, str]) -> str:
        missing = [p for p in _LOGON_PARAMS if p not in params]
        if missing:
            return f"ERROR: Missing parameter(s) {', '.join(missing)}"
        operator = params["Operator"].strip().upper()
        secrets_ = {op.upper(): s for op, s in self.config.operators.items()}.get(operator)
        if secrets_ is None:
            return f"ERROR: Operator '{operator}' not found"
        if not secrets.compare_digest(
            params["OperatorPassword"].encode(), secrets_.login_password.get_secret_value().encode()
        ):
            return "ERROR: Invalid operator password"
        if params["CompanyId"].strip().upper() != self.config.company.upper():
            return f"ERROR: Company '{params['CompanyId'].strip()}' not found"
        if not secrets.compare_digest(
            params["CompanyPassword"].encode(), self.config.company_password.get_secret_value().encode()
        ):
            return "ERROR: Invalid company password"
        with self._lock:
            now = self.clock()
            self._purge(now)
            for user_id in [u for u, s in self._sessions.items() if s.operator == operator]:
                del self._sessions[user_id]
                self.stats.enet_evictions += 1
            if len(self._sessions) >= self.config.seats:
                return self.config.seats_error_text
            user_id = _new_user_id()
            self._sessions[user_id] = EnetSession(user_id, operator, now, now)
            self.stats.logons += 1
            return user_id

    def use(self, user_id: str) -> EnetSession | None:
        """The live session for ``user_id``, counting the call; ``None`` if ended, evicted or expired."""
        with self._lock:
            now = self.clock()
            session = self._sessions.get(user_id) or self._sessions.get(user_id.strip() + "  ")
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[session.user_id]
                return None
            session.calls += 1
            session.last_used = now
            return session

    def logoff(self, user_id: str) -> str:
        session = self.use(user_id)
        if session is None:
            return self.config.session_error_text
        with self._lock:
            self._sessions.pop(session.user_id, None)
        self.stats.logoffs += 1
        return "0"

    # ----- HTTP --------------------------------------------------------------------------------------

    def profile_xml(self, session: EnetSession) -> str:
        config = self.config
        fields = {
            "CompanyName": config.company_name,
            "OperatorCode": session.operator,
            "OperatorGroup": "",
            "CompanyId": config.company,
            "CompanyDate": self.today().isoformat(),
            "SystemNationalityCode": "USA",
            "LocalCurrencyCode": "$",
            "DatabaseType": "SQL",
            "SysproVersion": config.syspro_version,
            "EnetVersion": config.enet_version,
        }
        lines = "".join(f"<{k}>{escape(v)}</{k}>" if v else f"<{k}/>" for k, v in fields.items())
        return (
            '<?xml version="1.0" encoding="Windows-1252"?>\n'
            f"<LogonProfile Language='05' Language2='EN' Version='{escape(config.enet_version)}'>"
            f"{lines}</LogonProfile>"
        )

    async def handle(self, request: Request, subpath: str) -> Response:
        """``subpath`` is the part after the e.net root, lower-cased (WCF matches paths that way)."""
        if request.method != "GET":
            return Response("Method not allowed.", status_code=405, media_type="text/html", headers=_SERVER)
        # WCF binds query parameters by name without regard to case.
        canonical = {p.lower(): p for p in (*_LOGON_PARAMS, "UserId", "BusinessObject", "XmlIn")}
        params: dict[str, str] = {}
        for name, value in parse_qsl(request.url.query, keep_blank_values=True):
            params.setdefault(canonical.get(name.lower(), name), value)
        self.stats.enet_calls += 1
        if subpath == "/logon":
            answer = self.logon(params)
            if self.config.logon_json_quoted and not answer.startswith("ERROR"):
                answer = f'"{answer}"'  # some e.net versions wrap the id as a JSON string
            return _octets(answer)
        if subpath == "/logoff":
            return _octets(self.logoff(params.get("UserId", "")))
        if subpath == "/getlogonprofile":
            session = self.use(params.get("UserId", ""))
            if session is None:
                return _octets(self.config.session_error_text)
            return _octets(self.profile_xml(session))
        if subpath in (
            "/query/query",
            "/query/browse",
            "/query/fetch",
            "/transaction/post",
            "/setup/add",
            "/setup/update",
            "/setup/delete",
        ):
            session = self.use(params.get("UserId", ""))
            if session is None:
                return _octets(self.config.session_error_text)
            business_object = params.get("BusinessObject", subpath.rsplit("/", 1)[-1]).upper()
            return _octets(
                f"ERROR: e.net exception 100000 - Business object {business_object} is not licensed"
            )
        return Response(
            "<html><body><h1>Endpoint not found.</h1></body></html>",
            status_code=404,
            media_type="text/html",
            headers=_SERVER,
        )
