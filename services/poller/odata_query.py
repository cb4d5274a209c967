"""OData v4 query text, built so that no value can change the meaning of a query.

Every value that reaches ``$filter`` goes through a literal builder here: string literals double their
single quotes (the only escape OData v4 has inside ``'...'``), and the finished query string is
percent-encoded as UTF-8 with nothing left unescaped in values, so ``&``, ``#``, ``+`` (base64!), ``%``
and non-ASCII characters arrive as the characters they are. Column names come from configuration, never
from data, and are still checked to be plain identifiers. Pure: no I/O.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import quote

__all__ = [
    "any_of",
    "binary_literal",
    "check_identifier",
    "date_literal",
    "datetime_literal",
    "encode_query",
    "number_literal",
    "string_literal",
]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_identifier(name: str) -> str:
    """A column or entity-set name, refused unless it is a plain identifier (it is written unquoted)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not an OData identifier: {name!r}")
    return name


def string_literal(value: str) -> str:
    """``'value'`` with embedded single quotes doubled, as OData v4 ABNF requires."""
    return "'" + value.replace("'", "''") + "'"


def binary_literal(data: bytes) -> str:
    """``binary'<base64>'`` (OData v4 allows base64 or base64url; standard base64 is what JSON carries)."""
    return "binary'" + base64.b64encode(data).decode("ascii") + "'"


def datetime_literal(value: datetime) -> str:
    """A DateTimeOffset literal in UTC (``2024-01-01T00:00:00Z``), unquoted as OData v4 writes it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def date_literal(value: date) -> str:
    return value.isoformat()


def number_literal(value: int | Decimal) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a number literal must be finite")
        return format(value, "f")
    return str(int(value))


def any_of(column: str, values: Iterable[str]) -> str:
    """``(column eq 'a' or column eq 'b' ...)`` for string values."""
    check_identifier(column)
    terms = [f"{column} eq {string_literal(v)}" for v in values]
    if not terms:
        raise ValueError("any_of needs at least one value")
    return "(" + " or ".join(terms) + ")"


def encode_query(params: Sequence[tuple[str, str]]) -> str:
    """``$name=value&...`` with each value fully percent-encoded (UTF-8) and ``$`` kept in names."""
    return "&".join(f"{quote(name, safe='$')}={quote(value, safe='')}" for name, value in params)
