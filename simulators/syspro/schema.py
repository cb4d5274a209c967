"""Column model of the simulated tables and the CSDL document that describes them.

Rows are stored as tuples in column order (see ``store``), so each table's schema is the single place that
knows which position holds which column, its SQL type and how the OData layer must present it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from xml.sax.saxutils import quoteattr

__all__ = [
    "AR_AMENDMENT_JNL",
    "AR_CUSTOMER",
    "Column",
    "EntitySchema",
    "Kind",
    "csdl_document",
    "format_datetime",
    "timestamp_to_base64",
]

Kind = Literal["string", "decimal", "datetime", "binary", "int"]


@dataclass(frozen=True)
class Column:
    """One SQL column. ``padded`` marks ``char(n)``: SQL Server stores it right-padded with spaces."""

    name: str
    kind: Kind
    length: int = 0
    padded: bool = False
    precision: int = 0
    scale: int = 0
    nullable: bool = False

    @property
    def blank(self) -> Any:
        """What SQL Server holds for a NOT NULL column nobody filled in."""
        if self.kind == "string":
            return " " * self.length if self.padded else ""
        if self.kind in ("decimal", "int"):
            return 0
        return None


def _v(name: str, length: int) -> Column:
    return Column(name, "string", length)


def _c(name: str, length: int) -> Column:
    return Column(name, "string", length, padded=True)


def _d(name: str, precision: int, scale: int) -> Column:
    return Column(name, "decimal", precision=precision, scale=scale)


def _dt(name: str) -> Column:
    return Column(name, "datetime", nullable=True)


@dataclass
class EntitySchema:
    """An entity set: its columns in storage order and its key column."""

    name: str
    key: str
    columns: tuple[Column, ...]
    index: dict[str, int] = field(init=False)
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.names = tuple(c.name for c in self.columns)
        self.index = {c.name: i for i, c in enumerate(self.columns)}

    @property
    def key_index(self) -> int:
        return self.index[self.key]

    def column(self, name: str) -> Column:
        return self.columns[self.index[name]]


AR_CUSTOMER = EntitySchema(
    name="ArCustomer",
    key="Customer",
    columns=(
        _v("Customer", 15),
        _v("Name", 50),
        _v("ShortName", 20),
        _v("Branch", 10),
        _v("Area", 10),
        _v("CustomerClass", 10),
        _v("Salesperson", 20),
        _v("Salesperson1", 20),
        _v("Salesperson2", 20),
        _v("Salesperson3", 20),
        _v("PriceCode", 10),
        _c("TermsCode", 2),
        _c("CustomerType", 1),
        _c("CreditCheckFlag", 1),
        _d("CreditLimit", 12, 0),
        _c("CustomerOnHold", 1),
        _c("CreditStatus", 1),
        _c("Currency", 3),
        _c("LanguageCode", 2),
        _c("Nationality", 3),
        _v("Telephone", 20),
        _c("TelephoneExtn", 5),
        _v("AddTelephone", 20),
        _v("Fax", 20),
        _v("DocFax", 20),
        _v("Email", 255),
        _v("Contact", 50),
        _v("DocFaxContact", 50),
        _v("SoldToAddr1", 40),
        _v("SoldToAddr2", 40),
        _v("SoldToAddr3", 40),
        _v("SoldToAddr3Loc", 40),
        _v("SoldToAddr4", 40),
        _v("SoldToAddr5", 40),
        _v("SoldPostalCode", 10),
        _d("SoldToGpsLat", 8, 6),
        _d("SoldToGpsLong", 9, 6),
        _v("ShipToAddr1", 40),
        _v("ShipToAddr2", 40),
        _v("ShipToAddr3", 40),
        _v("ShipToAddr3Loc", 40),
        _v("ShipToAddr4", 40),
        _v("ShipToAddr5", 40),
        _v("ShipPostalCode", 10),
        _c("State", 2),
        _c("CountyZip", 5),
        _c("City", 3),
        _c("State1", 2),
        _c("CountyZip1", 5),
        _c("City1", 3),
        _c("StateCode", 3),
        _v("MasterAccount", 15),
        _v("StoreNumber", 20),
        _dt("DateCustAdded"),
        _dt("DateLastSale"),
        _dt("DateLastPay"),
        _c("SalesAllowed", 1),
        _c("PaymentsAllowed", 1),
        _c("QuotesAllowed", 1),
        _c("CrNotesAllowed", 1),
        _c("DrNotesAllowed", 1),
        _c("QueryAllowed", 1),
        _v("UserField1", 10),
        _d("UserField2", 14, 2),
        Column("TimeStamp", "binary", length=8),
    ),
)

AR_AMENDMENT_JNL = EntitySchema(
    name="ArAmendmentJnl",
    key="JnlEntry",
    columns=(
        Column("JnlEntry", "int"),
        _dt("JnlDate"),
        _d("JnlTime", 8, 0),
        _v("Customer", 15),
        _c("ChangeFlag", 1),
        _v("ColumnName", 30),
        _v("Before", 255),
        _v("OperatorCode", 20),
        Column("TimeStamp", "binary", length=8),
    ),
)


def timestamp_to_base64(value: int) -> str:
    """A rowversion as OData carries ``Edm.Binary``: the 8 bytes big-endian, standard base64."""
    return base64.b64encode(value.to_bytes(8, "big")).decode("ascii")


def format_datetime(value: datetime | date) -> str:
    """The single text form datetimes are stored and served in, so text order equals time order."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{value.isoformat()}T00:00:00Z"


_NAMESPACE = "SYSPRO.OData"


def _property_xml(column: Column) -> str:
    name = quoteattr(column.name)
    if column.kind == "string":
        return f'<Property Name={name} Type="Edm.String" Nullable="false" MaxLength="{column.length}" />'
    if column.kind == "decimal":
        return (
            f'<Property Name={name} Type="Edm.Decimal" Nullable="false" '
            f'Precision="{column.precision}" Scale="{column.scale}" />'
        )
    if column.kind == "int":
        return f'<Property Name={name} Type="Edm.Int32" Nullable="false" />'
    if column.kind == "datetime":
        nullable = "true" if column.nullable else "false"
        return f'<Property Name={name} Type="Edm.DateTimeOffset" Nullable="{nullable}" />'
    return f'<Property Name={name} Type="Edm.Binary" Nullable="false" MaxLength="{column.length}" />'


def csdl_document(schemas: list[EntitySchema]) -> bytes:
    """The ``$metadata`` CSDL (OData v4 EDMX) for the given entity sets."""
    types = []
    sets = []
    for schema in schemas:
        props = "\n        ".join(_property_xml(c) for c in schema.columns)
        types.append(
            f'      <EntityType Name="{schema.name}">\n'
            f'        <Key><PropertyRef Name="{schema.key}" /></Key>\n'
            f"        {props}\n"
            f"      </EntityType>"
        )
        sets.append(f'        <EntitySet Name="{schema.name}" EntityType="{_NAMESPACE}.{schema.name}" />')
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">\n'
        "  <edmx:DataServices>\n"
        f'    <Schema Namespace="{_NAMESPACE}" xmlns="http://docs.oasis-open.org/odata/ns/edm">\n'
        + "\n".join(types)
        + '\n      <EntityContainer Name="Container">\n'
        + "\n".join(sets)
        + "\n      </EntityContainer>\n    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n"
    )
    return body.encode("utf-8")
