"""Test-control HTTP API under ``/_admin``: not SYSPRO, and never subject to injected faults.

Customer codes can hold quotes, slashes, spaces and non-ASCII characters, so they travel as one
percent-encoded path segment and are matched with a ``path`` converter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from simulators.syspro.config import SysproFaults
from simulators.syspro.store import DuplicateKey, RowNotFound, StoreError

if TYPE_CHECKING:
    from simulators.syspro.simulator import SysproSimulator

__all__ = ["build_admin_app"]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(ge=0, le=5_000_000)
    seed: int = 0


class OperatorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    odata_password: str | None = None
    login_password: str | None = None


class SwitchUpdate(BaseModel):
    """Behaviour switches that may change while the simulator runs."""

    model_config = ConfigDict(extra="forbid")

    page_cap: int | None = Field(None, ge=1)
    emit_next_link: bool | None = None
    count_allowed: bool | None = None
    timestamp_filter_allowed: bool | None = None
    odata_auth_expire_every: int | None = Field(None, ge=0)
    unauthorized_body: str | None = None
    journalling: bool | None = None
    session_idle_seconds: float | None = Field(None, ge=0)
    session_max_calls: int | None = Field(None, ge=0)
    seats: int | None = Field(None, ge=0)


def build_admin_app(sim: SysproSimulator) -> FastAPI:
    app = FastAPI(title="SYSPRO simulator control", docs_url=None, redoc_url=None, openapi_url=None)

    def _customer_or_404(code: str) -> dict[str, Any]:
        row = sim.get(code)
        if row is None:
            raise HTTPException(404, f"customer {code!r} not found")
        return row

    @app.post("/_admin/customers", status_code=201)
    def create_customer(row: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        try:
            return sim.create(row)
        except DuplicateKey as exc:
            raise HTTPException(409, str(exc)) from exc
        except StoreError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.get("/_admin/customers/{code:path}")
    def get_customer(code: str) -> dict[str, Any]:
        return _customer_or_404(code)

    @app.patch("/_admin/customers/{code:path}")
    def update_customer(code: str, changes: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        try:
            return sim.update(code, **changes)
        except RowNotFound as exc:
            raise HTTPException(404, f"customer {code!r} not found") from exc
        except StoreError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.delete("/_admin/customers/{code:path}", status_code=204)
    def delete_customer(code: str) -> Response:
        try:
            sim.delete(code)
        except RowNotFound as exc:
            raise HTTPException(404, f"customer {code!r} not found") from exc
        return Response(status_code=204)

    @app.post("/_admin/generate")
    def generate(request: GenerateRequest) -> dict[str, int]:
        return {"count": sim.generate(request.n, request.seed)}

    @app.get("/_admin/faults")
    def get_faults() -> SysproFaults:
        return sim.faults

    @app.post("/_admin/faults")
    def set_faults(changes: Annotated[dict[str, Any], Body()]) -> SysproFaults:
        try:
            return sim.set_faults(**changes)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.get("/_admin/stats")
    def get_stats(log: int = 100) -> dict[str, Any]:
        return sim.stats.as_dict(log)

    @app.post("/_admin/stats/reset", status_code=204)
    def reset_stats() -> Response:
        sim.reset_stats()
        return Response(status_code=204)

    @app.post("/_admin/expire-sessions")
    def expire_sessions() -> dict[str, int]:
        return {"expired": sim.expire_sessions()}

    @app.put("/_admin/operators/{operator}")
    def put_operator(operator: str, update: OperatorUpdate) -> dict[str, str]:
        sim.set_operator(operator, update.odata_password, update.login_password)
        return {"operator": operator.upper()}

    @app.get("/_admin/config")
    def get_switches() -> dict[str, Any]:
        return sim.switches()

    @app.patch("/_admin/config")
    def set_switches(update: SwitchUpdate) -> dict[str, Any]:
        try:
            return sim.set_switches(**update.model_dump(exclude_unset=True))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    return app
