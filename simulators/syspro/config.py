"""Settings of the SYSPRO simulator.

Every behaviour the reference marks as unknown or disputed is a switch here, with the reference's suggested
default, so a test can pin the variant it cares about.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["OperatorSecrets", "SysproFaults", "SysproSimConfig"]


class OperatorSecrets(BaseModel):
    """The two passwords a SYSPRO operator has: one for the OData service, one for e.net logons."""

    model_config = ConfigDict(extra="forbid")

    odata_password: SecretStr = SecretStr("")
    login_password: SecretStr = SecretStr("")


class SysproFaults(BaseModel):
    """Faults injected into SYSPRO-facing responses (never into ``/_admin``).

    Rates are probabilities per request, drawn from a generator seeded with ``seed`` so runs repeat.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: float = Field(0.0, ge=0)
    error_rate: float = Field(0.0, ge=0, le=1)
    error_statuses: list[int] = Field(default_factory=lambda: [500, 503])
    timeout_rate: float = Field(0.0, ge=0, le=1)
    timeout_seconds: float = Field(30.0, ge=0)
    timeout_response: Literal["drop", "504"] = "drop"
    malformed_rate: float = Field(0.0, ge=0, le=1)
    applies_to: Literal["all", "odata", "enet"] = "all"
    seed: int = 0


def _default_operators() -> dict[str, OperatorSecrets]:
    return {
        "ADMIN": OperatorSecrets(odata_password=SecretStr("odata-secret"), login_password=SecretStr("admin")),
    }


class SysproSimConfig(BaseModel):
    """How the simulated SYSPRO 8 installation looks and behaves."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    company: str = "EDU1"
    company_name: str = "EDU1 Outdoor Distribution"
    company_password: SecretStr = SecretStr("")
    odata_root: str = "/SYSPRO8Odata/SYSPROOData/{company}"
    enet_root: str = "/SYSPROWCFService/Rest"
    operators: dict[str, OperatorSecrets] = Field(default_factory=_default_operators)

    # OData. Rows per response whatever $top says; whether a nextLink is written (unknown on the real
    # service: off means silent truncation); whether TimeStamp may be filtered/ordered (binary comparison is
    # not standard OData); SQL Server's default _CI_ collation for text comparisons and key uniqueness.
    page_cap: int = Field(5000, ge=1)
    emit_next_link: bool = True
    count_allowed: bool = True
    timestamp_filter_allowed: bool = True
    case_insensitive_collation: bool = True
    # Every Nth OData request answers 401 once, as while the service reloads its operator list.
    odata_auth_expire_every: int | None = Field(None, ge=1)
    unauthorized_body: Literal["html", "empty"] = "html"
    # Expose ArAmendmentJnl and write a row per add, changed column and delete.
    journalling: bool = False

    # e.net sessions: idle expiry and call budget (both unknown on the real system, off by default),
    # licence seats, and whether Logon wraps the session id in JSON quotes as some versions do.
    session_idle_seconds: float | None = Field(None, gt=0)
    session_max_calls: int | None = Field(None, ge=1)
    seats: int = Field(5, ge=0)
    logon_json_quoted: bool = False
    session_error_text: str = "ERROR: Invalid UserId - the session is no longer active"
    seats_error_text: str = "ERROR: No e.net licence is available for this operator - all seats are in use"
    syspro_version: str = "8.0.0.2023"
    enet_version: str = "8.0.0.2023"

    faults: SysproFaults = Field(default_factory=SysproFaults)

    @property
    def odata_path(self) -> str:
        """The OData service root path with the company filled in, without a trailing slash."""
        return self.odata_root.replace("{company}", self.company).rstrip("/")

    @property
    def enet_path(self) -> str:
        return self.enet_root.rstrip("/")
