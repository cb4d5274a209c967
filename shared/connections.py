"""The connections file: which SYSPRO companies feed which Mailchimp audiences, and how.

One YAML (or JSON) file lists *connections*; each has a SYSPRO source and one or more audiences with
their field mapping, tag rules and status policy. It is validated as a whole at start-up: an error
names the path of the bad field (``connections[0].audiences[1].policy.inactive_action``).
Secrets are never in this file, only credential names from the encrypted store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "AddressLayout",
    "Audience",
    "Connection",
    "ConnectionsConfig",
    "ConnectionsError",
    "EmailRules",
    "FieldMapping",
    "StatusPolicy",
    "SysproSource",
    "TagRules",
    "load_connections",
]

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
MergeTag = Annotated[str, Field(min_length=1, max_length=10, pattern=r"^[A-Z0-9_]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SysproSource(_Model):
    """Where and how to read ``ArCustomer``."""

    #: Full OData service root including the company, e.g. ``https://host/SYSPRO8Odata/SYSPROOData/EDU1``.
    odata_url: str = Field(pattern=r"^https?://")
    entity_set: str = "ArCustomer"
    operator: str = Field(min_length=1)
    #: Name of a ``syspro`` credential in the encrypted store (holds the OData password).
    credential: Identifier
    #: Optional e.net REST base (``.../SYSPROWCFService/Rest``), used to check the operator's logon.
    enet_url: str | None = Field(default=None, pattern=r"^https?://")
    company_id: str | None = None
    strategy: Literal["snapshot", "cursor"] = "snapshot"
    #: Column the cursor strategy filters on (``TimeStamp`` rowversion or a site datetime column).
    cursor_column: str = "TimeStamp"
    #: How far behind the last cursor to re-read: rowversion units for binary columns, seconds for
    #: datetime columns. Re-read rows are diffed against the snapshot, so overlap never re-emits.
    cursor_overlap: int = Field(default=0, ge=0)
    #: The cursor strategy does a full snapshot diff every N runs (catches deletes and missed rows).
    full_scan_every: int = Field(default=96, ge=1)
    interval_seconds: float = Field(default=900.0, gt=0)
    page_size: int = Field(default=5000, ge=1, le=5000)
    #: Extra columns to read beyond those the mapping needs.
    extra_columns: list[str] = Field(default_factory=list)
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)


class AddressLayout(_Model):
    """Which SYSPRO columns make Mailchimp's ADDRESS (sites lay out the free-form lines differently)."""

    addr1: str = "SoldToAddr1"
    addr2: str | None = "SoldToAddr2"
    city: str = "SoldToAddr3"
    state: str = "SoldToAddr4"
    zip: str = "SoldPostalCode"
    country: str | None = "SoldToAddr5"
    country_fallback: str | None = "Nationality"


class FieldMapping(_Model):
    """SYSPRO columns feeding the audience's merge fields."""

    #: Free-text contact name, split into FNAME/LNAME.
    contact: str | None = "Contact"
    #: Used for FNAME when the contact is blank.
    name_fallback: str | None = "Name"
    company: str | None = "Name"
    company_merge_tag: MergeTag | None = None
    phone: str | None = "Telephone"
    address: AddressLayout | None = Field(default_factory=AddressLayout)
    #: Custom merge fields: merge tag -> SYSPRO column.
    extra: dict[MergeTag, str] = Field(default_factory=dict)


class TagRules(_Model):
    """Tags derived from columns (``{"Branch": "branch-"}`` gives ``branch-10``) and fixed tags."""

    from_columns: dict[str, str] = Field(default_factory=dict)
    fixed: list[str] = Field(default_factory=list)


class StatusPolicy(_Model):
    """Which customers are active, and what happens to the member of an inactive one."""

    on_hold_is_inactive: bool = True
    #: CreditStatus values that make a customer inactive (9 = manual hold).
    inactive_credit_statuses: list[str] = Field(default_factory=lambda: ["9"])
    #: Tag overdue customers ``overdue_30`` ... ``overdue_180`` from CreditStatus 1-6.
    overdue_tags: bool = False
    inactive_after_days_without_sale: int | None = Field(default=None, ge=1)
    #: A site rule: the customer is inactive when ``column`` holds one of ``values``.
    inactive_column: str | None = None
    inactive_values: list[str] = Field(default_factory=list)
    inactive_action: Literal["tag", "archive", "unsubscribe"] = "tag"
    inactive_tag: str = "inactive"
    on_hold_tag: str = "on-hold"

    @model_validator(mode="after")
    def _column_rule_complete(self) -> StatusPolicy:
        if bool(self.inactive_column) != bool(self.inactive_values):
            raise ValueError("inactive_column and inactive_values go together")
        return self


class EmailRules(_Model):
    """How to read SYSPRO's Email column."""

    column: str = "Email"
    #: A field holding several addresses: use the first valid one, or reject the customer.
    multiple: Literal["first_valid", "reject"] = "first_valid"
    #: Two customers with one email: the first owner keeps it, or the most recent claimant takes it.
    duplicates: Literal["first_owner", "most_recent"] = "first_owner"


class Audience(_Model):
    """One Mailchimp audience fed by the connection."""

    id: Identifier
    list_id: str = Field(min_length=1)
    #: Name of a ``mailchimp_api_key`` or ``mailchimp_oauth`` credential in the store.
    credential: Identifier
    status_if_new: Literal["subscribed", "pending"] = "subscribed"
    mapping: FieldMapping = Field(default_factory=FieldMapping)
    tags: TagRules = Field(default_factory=TagRules)
    policy: StatusPolicy = Field(default_factory=StatusPolicy)
    email: EmailRules = Field(default_factory=EmailRules)


class Connection(_Model):
    id: Identifier
    syspro: SysproSource
    audiences: list[Audience] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_audiences(self) -> Connection:
        ids = [a.id for a in self.audiences]
        if len(ids) != len(set(ids)):
            raise ValueError(f"audience ids must be unique within a connection: {ids}")
        return self

    def audience(self, audience_id: str) -> Audience:
        for audience in self.audiences:
            if audience.id == audience_id:
                return audience
        raise KeyError(audience_id)


class ConnectionsConfig(_Model):
    connections: list[Connection] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_connections(self) -> ConnectionsConfig:
        ids = [c.id for c in self.connections]
        if len(ids) != len(set(ids)):
            raise ValueError(f"connection ids must be unique: {ids}")
        return self

    def get(self, connection_id: str) -> Connection:
        for connection in self.connections:
            if connection.id == connection_id:
                return connection
        raise KeyError(connection_id)


class ConnectionsError(RuntimeError):
    """The connections file is missing or invalid; the message names the bad field."""


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def load_connections(path: Path) -> ConnectionsConfig:
    """Read and validate the connections file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConnectionsError(f"cannot read connections file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConnectionsError(f"connections file {path} is not valid YAML: {exc}") from None
    try:
        return ConnectionsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_path(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConnectionsError(f"connections file {path} is invalid: {problems}") from None
