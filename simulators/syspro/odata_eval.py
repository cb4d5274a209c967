"""Type-check a parsed ``$filter``/``$orderby`` against a table and turn it into Python callables on rows.

Comparisons follow what SQL Server does when ASP.NET OData hands the query to it: text compares ignoring
trailing spaces and, under a ``_CI_`` collation, case; a comparison with a null column is false except
``ne``, which is true (C# null semantics, which Entity Framework reproduces). Incompatible operand types and
unknown properties are refused with messages in the style of ASP.NET OData.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from simulators.syspro.odata_syntax import (
    Binary,
    Call,
    Compare,
    Literal,
    Logical,
    Node,
    Not,
    OrderKey,
    Property,
    SyntaxProblem,
)
from simulators.syspro.schema import EntitySchema

__all__ = ["QueryRefused", "Row", "compile_filter", "order_key_functions"]

Row = tuple[Any, ...]
Getter = Callable[[Row], Any]

_EDM = {
    "string": "Edm.String",
    "number": "Edm.Decimal",
    "datetime": "Edm.DateTimeOffset",
    "binary": "Edm.Binary",
    "bool": "Edm.Boolean",
    "null": "null",
}
_OP_NAMES = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_STRING_FUNCTIONS = {"startswith": 2, "endswith": 2, "contains": 2, "tolower": 1, "toupper": 1, "trim": 1}


class QueryRefused(SyntaxProblem):
    """Well-formed text the service still refuses (unknown property, type mismatch, refused column)."""


class _Compiler:
    def __init__(self, schema: EntitySchema, case_insensitive: bool, refused: frozenset[str]) -> None:
        self.schema = schema
        self.refused = refused
        self.fold: Callable[[str], str] = (
            (lambda s: s.rstrip(" ").casefold()) if case_insensitive else (lambda s: s.rstrip(" "))
        )
        self.fold_prefix: Callable[[str], str] = (
            (lambda s: s.casefold()) if case_insensitive else (lambda s: s)
        )

    def column_kind(self, name: str) -> tuple[int, str]:
        if name not in self.schema.index:
            raise QueryRefused(
                f"Could not find a property named '{name}' on type 'SYSPRO.OData.{self.schema.name}'."
            )
        if name in self.refused:
            raise QueryRefused(
                f"The property '{name}' cannot be used in the $filter or $orderby query option."
            )
        kind = self.schema.column(name).kind
        return self.schema.index[name], ("number" if kind in ("decimal", "int") else kind)

    def value(self, node: Node) -> tuple[str, Getter]:
        """A value-producing node: (kind, getter)."""
        if isinstance(node, Property):
            i, kind = self.column_kind(node.name)
            return kind, operator.itemgetter(i)
        if isinstance(node, Literal):
            constant = node.value.data if isinstance(node.value, Binary) else node.value
            return node.kind, lambda _row: constant
        if isinstance(node, Call):
            return self.call(node)
        kind, predicate = self.boolean(node)
        return kind, predicate

    def call(self, node: Call) -> tuple[str, Getter]:
        arity = _STRING_FUNCTIONS.get(node.name)
        if arity is None:
            raise QueryRefused(f"An unknown function with name '{node.name}' was found.")
        if len(node.args) != arity:
            raise QueryRefused(f"The function '{node.name}' takes {arity} argument(s).")
        getters: list[Getter] = []
        for arg in node.args:
            kind, getter = self.value(arg)
            if kind not in ("string", "null"):
                raise QueryRefused(
                    f"The function '{node.name}' needs Edm.String arguments, not {_EDM[kind]}."
                )
            getters.append(getter)
        if arity == 1:
            (get,) = getters
            transforms: dict[str, Callable[[str], str]] = {
                "tolower": str.lower,
                "toupper": str.upper,
                "trim": str.strip,
            }
            transform = transforms[node.name]
            return "string", lambda row: None if (v := get(row)) is None else transform(v)
        hay, needle = getters
        fold = self.fold_prefix
        test = {"startswith": str.startswith, "endswith": str.endswith, "contains": str.__contains__}[
            node.name
        ]

        def string_function(row: Row) -> bool:
            h, n = hay(row), needle(row)
            return h is not None and n is not None and test(fold(h), fold(n))

        return "bool", string_function

    def boolean(self, node: Node) -> tuple[str, Getter]:
        if isinstance(node, Logical):
            left = self.predicate(node.left)
            right = self.predicate(node.right)
            if node.op == "and":
                return "bool", lambda row: left(row) and right(row)
            return "bool", lambda row: left(row) or right(row)
        if isinstance(node, Not):
            operand = self.predicate(node.operand)
            return "bool", lambda row: not operand(row)
        if isinstance(node, Compare):
            return "bool", self.compare(node)
        return self.value(node)

    def predicate(self, node: Node) -> Getter:
        kind, getter = self.boolean(node)
        if kind != "bool":
            raise QueryRefused(f"The expression must be an Edm.Boolean, not {_EDM[kind]}.")
        return getter

    def compare(self, node: Compare) -> Getter:
        left_kind, left = self.value(node.left)
        right_kind, right = self.value(node.right)
        if "null" not in (left_kind, right_kind) and left_kind != right_kind:
            raise QueryRefused(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{_EDM[left_kind]}' and '{_EDM[right_kind]}' for operator kind '{_OP_NAMES[node.op]}'."
            )
        kind = right_kind if left_kind == "null" else left_kind
        op = _OPS[node.op]
        if kind == "string":
            fold = self.fold
            left = _fold_getter(left, fold)
            right = _fold_getter(right, fold)
        elif kind == "binary":
            literal = node.right if isinstance(node.right, Literal) else None
            if literal is not None and isinstance(literal.value, Binary) and len(literal.value.data) == 8:
                # A rowversion against an 8-byte literal: big-endian bytes order like the integer.
                value = int.from_bytes(literal.value.data, "big")
                return _against_constant(_int_getter(left), op, node.op, value)
            left = _bytes_getter(left)
            right = _bytes_getter(right)
        if kind in ("string", "number", "datetime", "binary") and isinstance(node.right, Literal):
            return _against_constant(left, op, node.op, right(()))
        return _against_getter(left, right, op, node.op)


def _fold_getter(get: Getter, fold: Callable[[str], str]) -> Getter:
    return lambda row: None if (v := get(row)) is None else fold(v)


def _int_getter(get: Getter) -> Getter:
    def as_int(row: Row) -> Any:
        v = get(row)
        return int.from_bytes(v, "big") if isinstance(v, bytes) else v

    return as_int


def _bytes_getter(get: Getter) -> Getter:
    def as_bytes(row: Row) -> Any:
        v = get(row)
        return v.to_bytes(8, "big") if isinstance(v, int) else v

    return as_bytes


def _against_constant(left: Getter, op: Callable[[Any, Any], bool], name: str, constant: Any) -> Getter:
    """The common case ``Column op literal``, specialised because it runs once per row of a scan."""
    if constant is None:
        if name == "eq":
            return lambda row: left(row) is None
        if name == "ne":
            return lambda row: left(row) is not None
        return lambda row: False
    if name == "ne":
        return lambda row: (v := left(row)) is None or v != constant
    return lambda row: (v := left(row)) is not None and op(v, constant)


def _against_getter(left: Getter, right: Getter, op: Callable[[Any, Any], bool], name: str) -> Getter:
    def compare(row: Row) -> bool:
        a, b = left(row), right(row)
        if a is None or b is None:
            if name == "eq":
                return a is None and b is None
            if name == "ne":
                return not (a is None and b is None)
            return False
        return op(a, b)

    return compare


def compile_filter(
    node: Node, schema: EntitySchema, case_insensitive: bool, refused: frozenset[str] = frozenset()
) -> Getter:
    """A predicate on stored rows for a parsed ``$filter``; raises ``QueryRefused`` for a bad query."""
    compiler = _Compiler(schema, case_insensitive, refused)
    kind, getter = compiler.boolean(node)
    if kind != "bool":
        raise QueryRefused("The $filter expression must evaluate to a single Edm.Boolean value.")
    return getter


def _folded_column(i: int, fold: Callable[[str], str]) -> Getter:
    return lambda row: fold(row[i])


def _nulls_first_column(i: int) -> Getter:
    return lambda row: (row[i] is not None, row[i] or 0)


def order_key_functions(
    keys: list[OrderKey], schema: EntitySchema, case_insensitive: bool, refused: frozenset[str] = frozenset()
) -> list[tuple[Getter, bool]]:
    """One ``(sort key, descending)`` per ``$orderby`` item; nulls sort first ascending, as in SQL Server."""
    compiler = _Compiler(schema, case_insensitive, refused)
    result: list[tuple[Getter, bool]] = []
    for key in keys:
        i, kind = compiler.column_kind(key.name)
        if kind == "string":
            result.append((_folded_column(i, compiler.fold), key.descending))
        elif schema.column(key.name).nullable:
            result.append((_nulls_first_column(i), key.descending))
        else:
            result.append((operator.itemgetter(i), key.descending))
    return result
