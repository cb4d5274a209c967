"""Tokenizer and recursive-descent parser for the OData v4 ``$filter`` and ``$orderby`` subset SYSPRO needs.

Grammar (lowest precedence first)::

    expr    := and ( "or" and )*
    and     := not ( "and" not )*
    not     := "not" not | compare
    compare := primary ( ("eq"|"ne"|"gt"|"ge"|"lt"|"le") primary )?
    primary := "(" expr ")" | literal | name "(" expr ("," expr)* ")" | name

Literals: ``'text'`` (a quote inside is doubled), integers and decimals, ``true``/``false``/``null``,
DateTimeOffset (``2024-01-01T00:00:00Z``, offsets allowed) and Date (``2024-01-01``), and binary as
``binary'<base64 or base64url>'`` or ``X'<hex>'``. Anything else is a ``SyntaxProblem`` with the offset.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from simulators.syspro.schema import format_datetime

__all__ = [
    "Binary",
    "Call",
    "Compare",
    "Literal",
    "Logical",
    "Node",
    "Not",
    "OrderKey",
    "Property",
    "SyntaxProblem",
    "parse_filter",
    "parse_orderby",
]

COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")


class SyntaxProblem(ValueError):
    """The query text cannot be parsed; carries a message fit for an OData error body."""


@dataclass(frozen=True)
class Property:
    name: str


@dataclass(frozen=True)
class Literal:
    """``kind`` is one of string, number, datetime, binary, bool, null."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Logical:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


Node = Property | Literal | Compare | Logical | Not | Call


@dataclass(frozen=True)
class Binary:
    """A binary literal's bytes (kept separate so ``Literal.value`` stays hashable and typed)."""

    data: bytes


@dataclass(frozen=True)
class OrderKey:
    name: str
    descending: bool


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<binary>(?:binary|X)'(?P<bin>[^']*)')
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int
    value: Any = None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise SyntaxProblem(
                    f"Syntax error: unterminated string literal at position {pos} in '{text}'."
                )
            raise SyntaxProblem(f"Syntax error: character '{text[pos]}' at position {pos} is not valid.")
        kind = match.lastgroup or ""
        if kind == "bin":
            kind = "binary"
        token_text = match.group(0)
        if kind != "ws":
            tokens.append(_Token(kind, token_text, pos, _literal_value(kind, token_text, match, pos)))
        pos = match.end()
    return tokens


def _literal_value(kind: str, token: str, match: re.Match[str], pos: int) -> Any:
    if kind == "string":
        return token[1:-1].replace("''", "'")
    if kind == "number":
        digits = token.rstrip("mMdDfFlL")
        if any(ch in digits for ch in ".eE"):
            return float(digits)
        return int(digits)
    if kind == "datetime":
        parsed = datetime.fromisoformat(token.replace("Z", "+00:00"))
        return format_datetime(parsed.astimezone(UTC))
    if kind == "date":
        try:
            return format_datetime(date.fromisoformat(token))
        except ValueError as exc:
            raise SyntaxProblem(f"'{token}' at position {pos} is not a valid date.") from exc
    if kind == "binary":
        return Binary(_decode_binary(token, match.group("bin"), pos))
    return None


def _decode_binary(token: str, payload: str, pos: int) -> bytes:
    try:
        if token.startswith("X"):
            return bytes.fromhex(payload)
        standard = payload.replace("-", "+").replace("_", "/")
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise SyntaxProblem(f"Unrecognized binary literal '{token}' at position {pos}.") from exc


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self) -> _Token:
        token = self.peek()
        if token is None:
            raise SyntaxProblem(f"Syntax error: unexpected end of expression in '{self.text}'.")
        self.i += 1
        return token

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text in words:
            self.i += 1
            return token.text
        return None

    def expect_punct(self, char: str) -> None:
        token = self.next()
        if token.text != char:
            raise SyntaxProblem(
                f"Syntax error: ')' or ',' expected at position {token.pos} in '{self.text}'."
            )

    def parse_all(self) -> Node:
        if not self.tokens:
            raise SyntaxProblem("The $filter query option is empty.")
        node = self.or_expr()
        token = self.peek()
        if token is not None:
            raise SyntaxProblem(
                f"Syntax error at position {token.pos} in '{self.text}': unexpected '{token.text}'."
            )
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = Logical("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.keyword("and"):
            node = Logical("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.keyword("not"):
            return Not(self.not_expr())
        return self.compare()

    def compare(self) -> Node:
        left = self.primary()
        op = self.keyword(*COMPARISONS)
        if op is None:
            return left
        return Compare(op, left, self.primary())

    def primary(self) -> Node:
        token = self.next()
        if token.text == "(":
            node = self.or_expr()
            self.expect_punct(")")
            return node
        if token.kind in ("string", "number", "binary"):
            return Literal(token.kind, token.value)
        if token.kind in ("datetime", "date"):
            return Literal("datetime", token.value)
        if token.kind == "name":
            if token.text in ("true", "false"):
                return Literal("bool", token.text == "true")
            if token.text == "null":
                return Literal("null", None)
            following = self.peek()
            if following is not None and following.text == "(":
                self.i += 1
                args = [self.or_expr()]
                while (sep := self.peek()) is not None and sep.text == ",":
                    self.i += 1
                    args.append(self.or_expr())
                self.expect_punct(")")
                return Call(token.text, tuple(args))
            if token.text in (*COMPARISONS, "and", "or", "not", "asc", "desc"):
                raise SyntaxProblem(
                    f"Syntax error at position {token.pos} in '{self.text}': '{token.text}' needs an operand."
                )
            return Property(token.text)
        raise SyntaxProblem(
            f"Syntax error at position {token.pos} in '{self.text}': unexpected '{token.text}'."
        )


def parse_filter(text: str) -> Node:
    """Parse a ``$filter`` value into a tree, or raise ``SyntaxProblem``."""
    return _Parser(text).parse_all()


_ORDER_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s+(asc|desc))?\s*$")


def parse_orderby(text: str) -> list[OrderKey]:
    """Parse ``$orderby`` (``Name desc,Customer``) into keys, or raise ``SyntaxProblem``."""
    keys = []
    for item in text.split(","):
        match = _ORDER_ITEM.match(item)
        if match is None:
            raise SyntaxProblem(
                f"Syntax error in $orderby: '{item.strip()}' is not a property with asc/desc."
            )
        keys.append(OrderKey(match.group(1), match.group(2) == "desc"))
    return keys
