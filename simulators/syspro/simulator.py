"""The SYSPRO simulator: one data store, the OData and e.net faces over it, and test controls.

``SysproSimulator.app`` is a plain ASGI callable that routes by path prefix. IIS and WCF match paths
without regard to case, so the service roots do too; what follows the OData root (entity-set names) is
case-sensitive, as in ASP.NET OData.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from simulators.syspro.admin import build_admin_app
from simulators.syspro.config import OperatorSecrets, SysproFaults, SysproSimConfig
from simulators.syspro.enet import EnetService
from simulators.syspro.faults import (
    FaultInjector,
    drop_connection,
    iis_error,
    sleep_unless_disconnected,
    truncate_json,
)
from simulators.syspro.generator import iter_customer_rows
from simulators.syspro.odata import ODataService
from simulators.syspro.query import render_rows
from simulators.syspro.stats import SimStats
from simulators.syspro.store import CustomerStore

__all__ = ["SysproSimulator"]

_RUNTIME_SWITCHES = (
    "page_cap",
    "emit_next_link",
    "count_allowed",
    "timestamp_filter_allowed",
    "odata_auth_expire_every",
    "unauthorized_body",
    "journalling",
    "session_idle_seconds",
    "session_max_calls",
    "seats",
)
_ZERO_MEANS_OFF = ("odata_auth_expire_every", "session_idle_seconds", "session_max_calls")


class SysproSimulator:
    """Holds the simulated company and serves it. Python methods and ``/_admin`` do the same things."""

    def __init__(
        self,
        config: SysproSimConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.config = config if config is not None else SysproSimConfig()
        self.stats = SimStats()
        self._today = today
        self.store = CustomerStore(
            case_insensitive=self.config.case_insensitive_collation,
            journalling=lambda: self.config.journalling,
            today=today,
            now=datetime.now,
        )
        self.odata = ODataService(self.config, self.store, self.stats)
        self.enet = EnetService(self.config, self.stats, clock=clock, today=today)
        self._faults = FaultInjector(self.config.faults)
        self._admin = build_admin_app(self)
        self._odata_prefix = self.config.odata_path.lower()
        self._enet_prefix = self.config.enet_path.lower()

    # ----- data --------------------------------------------------------------------------------------

    def generate(self, n: int, seed: int = 0) -> int:
        """Replace all customers with ``n`` seeded, realistic ones (codes ``000001``…)."""
        count = self.store.load(iter_customer_rows(n, seed, self._today()), n)
        self.odata.reset_engines()
        return count

    def _render(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return render_rows(self.store.schema, [row], None)[0]

    def create(self, row: dict[str, Any]) -> dict[str, Any]:
        return self._render(self.store.create(dict(row)))

    def update(self, customer: str, **changes: Any) -> dict[str, Any]:
        return self._render(self.store.update(customer, changes))

    def delete(self, customer: str) -> None:
        self.store.delete(customer)

    def get(self, customer: str) -> dict[str, Any] | None:
        row = self.store.get(customer)
        return None if row is None else self._render(row)

    def rows(self) -> list[dict[str, Any]]:
        """Every customer in key order, as OData would render it."""
        with self.store.lock:
            rows = list(self.store.iter_ordered())
        return render_rows(self.store.schema, rows, None)

    def __len__(self) -> int:
        return len(self.store)

    # ----- controls ----------------------------------------------------------------------------------

    @property
    def faults(self) -> SysproFaults:
        return self._faults.settings

    def set_faults(self, **changes: Any) -> SysproFaults:
        """Change fault settings (unnamed ones keep their value); the random sequence restarts."""
        settings = SysproFaults.model_validate({**self._faults.settings.model_dump(), **changes})
        self.config.faults = settings
        self._faults.replace(settings)
        return settings

    def clear_faults(self) -> None:
        self.set_faults(**SysproFaults(seed=self.faults.seed).model_dump())

    def reset_stats(self) -> None:
        self.stats.reset()

    def expire_sessions(self) -> int:
        return self.enet.expire_all()

    def set_operator(
        self, operator: str, odata_password: str | None = None, login_password: str | None = None
    ) -> None:
        """Create an operator or rotate its passwords, as done in SYSPRO's Operator Maintenance."""
        operators = {op.upper(): s for op, s in self.config.operators.items()}
        current = operators.get(operator.upper(), OperatorSecrets())
        operators[operator.upper()] = OperatorSecrets(
            odata_password=SecretStr(odata_password)
            if odata_password is not None
            else current.odata_password,
            login_password=SecretStr(login_password)
            if login_password is not None
            else current.login_password,
        )
        self.config.operators = operators

    def switches(self) -> dict[str, Any]:
        return {name: getattr(self.config, name) for name in _RUNTIME_SWITCHES}

    def set_switches(self, **changes: Any) -> dict[str, Any]:
        for name, value in changes.items():
            if name not in _RUNTIME_SWITCHES:
                raise ValueError(f"{name} cannot be changed at run time")
            if name in _ZERO_MEANS_OFF and value == 0:
                value = None
            setattr(self.config, name, value)
        return self.switches()

    # ----- ASGI --------------------------------------------------------------------------------------

    @property
    def app(self) -> Callable[..., Any]:
        return self

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/_admin" or path.startswith("/_admin/"):
            await self._admin(scope, receive, send)
            return
        lower = path.lower()
        if lower == self._odata_prefix or lower.startswith(self._odata_prefix + "/"):
            target = "odata"
            subpath = path[len(self._odata_prefix) :]
        elif lower == self._enet_prefix or lower.startswith(self._enet_prefix + "/"):
            target = "enet"
            subpath = lower[len(self._enet_prefix) :]
        else:
            await Response("Not Found", status_code=404, media_type="text/plain")(scope, receive, send)
            return
        request = Request(scope, receive)
        query = request.url.query
        fault = self._faults.draw(target)
        if fault.latency:
            # A plain sleep: watching for a disconnect would consume the request body.
            await asyncio.sleep(fault.latency)
        if fault.timeout:
            await sleep_unless_disconnected(receive, self.faults.timeout_seconds)
            self.stats.record(request.method, path, query, 0, 0, "timeout")
            if self.faults.timeout_response == "drop" and await drop_connection(receive):
                return
            await iis_error(504)(scope, receive, send)
            return
        if fault.error_status is not None:
            self.stats.record(request.method, path, query, fault.error_status, 0, fault.name)
            await iis_error(fault.error_status)(scope, receive, send)
            return
        rows = 0
        applied: str | None = None
        if target == "odata":
            result = await self.odata.handle(request, subpath)
            response = result.response
            rows = result.rows
            if fault.malformed and result.json and response.status_code == 200:
                response = truncate_json(response)
                rows = 0
                applied = "malformed"
        else:
            response = await self.enet.handle(request, subpath)
        self.stats.record(request.method, path, query, response.status_code, rows, applied)
        await response(scope, receive, send)
