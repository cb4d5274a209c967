"""OData system query options: parse them, run them against a table, cut the result into capped pages.

A filtered or re-ordered result is computed once per (table version, $filter, $orderby) and cached, so
paging through a million rows with ``$skip`` costs a slice per page, not a scan and a sort per page. With no
``$filter`` and key order the table's own key-ordered list is sliced directly.

Order is always completed by the primary key, as ASP.NET OData does when server paging is on: rows are
scanned in key order and Python's sort is stable, so ties keep key order.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from simulators.syspro.odata_eval import QueryRefused, Row, compile_filter, order_key_functions
from simulators.syspro.odata_syntax import SyntaxProblem, parse_filter, parse_orderby
from simulators.syspro.schema import EntitySchema, timestamp_to_base64

__all__ = ["Page", "QueryEngine", "QueryOptions", "Table", "parse_query_options", "render_rows"]

_SUPPORTED = frozenset({"$select", "$filter", "$orderby", "$top", "$skip", "$count", "$format"})
_REFUSED = {
    "$expand": "The query specified in the URI is not valid. ArCustomer has no navigation properties.",
    "$search": "The query parameter '$search' is not supported.",
    "$apply": "The query parameter '$apply' is not supported.",
    "$skiptoken": "The query parameter '$skiptoken' is not supported.",
    "$compute": "The query parameter '$compute' is not supported.",
}


class Table(Protocol):
    """What the engine needs from a stored table."""

    schema: EntitySchema
    version: int
    lock: threading.RLock

    def __len__(self) -> int: ...

    def ordered_slice(self, start: int, stop: int) -> list[Row]: ...

    def iter_ordered(self) -> Iterator[Row]: ...


@dataclass(frozen=True)
class QueryOptions:
    select: tuple[str, ...] | None
    filter: str | None
    orderby: str | None
    top: int | None
    skip: int
    count: bool
    params: tuple[tuple[str, str], ...]


def _non_negative(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0 or not text.strip().isdigit():
        raise SyntaxProblem(
            f"Invalid value '{text}' for {name} query option found. It must be a non-negative integer."
        )
    return value


def parse_query_options(params: list[tuple[str, str]], schema: EntitySchema) -> QueryOptions:
    """Validate the system query options of a request; raise ``SyntaxProblem`` for a 400."""
    seen: dict[str, str] = {}
    for name, value in params:
        if not name.startswith("$"):
            continue
        if name in _REFUSED:
            raise QueryRefused(_REFUSED[name])
        if name not in _SUPPORTED:
            raise QueryRefused(f"The query parameter '{name}' is not supported.")
        if name in seen:
            raise QueryRefused(
                f"Query option '{name}' was specified more than once, but it must be specified at most once."
            )
        seen[name] = value
    select = None
    if "$select" in seen:
        items = tuple(s.strip() for s in seen["$select"].split(","))
        if "*" not in items:
            for item in items:
                if item not in schema.index:
                    raise QueryRefused(
                        f"Could not find a property named '{item}' on type 'SYSPRO.OData.{schema.name}'."
                    )
            select = items
    fmt = seen.get("$format")
    if fmt is not None and fmt.split(";")[0].strip().lower() not in ("json", "application/json"):
        raise QueryRefused(f"The requested format '{fmt}' is not supported.")
    count_text = seen.get("$count", "false")
    if count_text not in ("true", "false"):
        raise SyntaxProblem(f"'{count_text}' is not a valid count option.")
    return QueryOptions(
        select=select,
        filter=seen.get("$filter"),
        orderby=seen.get("$orderby"),
        top=_non_negative("$top", seen["$top"]) if "$top" in seen else None,
        skip=_non_negative("$skip", seen["$skip"]) if "$skip" in seen else 0,
        count=count_text == "true",
        params=tuple(params),
    )


@dataclass
class Page:
    rows: list[Row]
    total: int
    next_skip: int | None
    next_top: int | None


class QueryEngine:
    """Runs queries against one table, caching computed result lists per data version."""

    def __init__(self, table: Table, case_insensitive: bool, cache_entries: int = 8) -> None:
        self.table = table
        self.case_insensitive = case_insensitive
        self._cache: OrderedDict[tuple[Any, ...], tuple[int, list[Row]]] = OrderedDict()
        self._cache_entries = cache_entries

    def _default_order(self, orderby: str | None) -> bool:
        if orderby is None:
            return True
        keys = parse_orderby(orderby)
        return len(keys) == 1 and keys[0].name == self.table.schema.key and not keys[0].descending

    def prepare(self, options: QueryOptions, refused: frozenset[str]) -> None:
        """Compile filter and order once so bad queries fail before any page is cut."""
        schema = self.table.schema
        if options.filter is not None:
            compile_filter(parse_filter(options.filter), schema, self.case_insensitive, refused)
        if options.orderby is not None:
            order_key_functions(parse_orderby(options.orderby), schema, self.case_insensitive, refused)

    def _result(self, options: QueryOptions, refused: frozenset[str]) -> list[Row]:
        table = self.table
        cache_key = (options.filter, options.orderby, refused)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] == table.version:
            self._cache.move_to_end(cache_key)
            return cached[1]
        schema = table.schema
        if options.filter is not None:
            predicate = compile_filter(parse_filter(options.filter), schema, self.case_insensitive, refused)
            rows = [row for row in table.iter_ordered() if predicate(row)]
        else:
            rows = list(table.iter_ordered())
        if options.orderby is not None:
            keys = order_key_functions(parse_orderby(options.orderby), schema, self.case_insensitive, refused)
            for key, descending in reversed(keys):
                rows.sort(key=key, reverse=descending)
        self._cache[cache_key] = (table.version, rows)
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)
        return rows

    def run(self, options: QueryOptions, page_cap: int, refused: frozenset[str]) -> Page:
        """One page: at most ``page_cap`` rows whatever ``$top`` asks; says where the next page starts."""
        table = self.table
        limit = page_cap if options.top is None else min(options.top, page_cap)
        with table.lock:
            if options.filter is None and self._default_order(options.orderby):
                total = len(table)
                rows = table.ordered_slice(options.skip, options.skip + limit)
            else:
                result = self._result(options, refused)
                total = len(result)
                rows = result[options.skip : options.skip + limit]
        end = options.skip + len(rows)
        wanted_more = options.top is None or options.top > len(rows)
        if end < total and wanted_more and len(rows) == limit:
            next_top = None if options.top is None else options.top - len(rows)
            return Page(rows, total, end, next_top)
        return Page(rows, total, None, None)


def render_rows(
    schema: EntitySchema, rows: list[Row], select: tuple[str, ...] | None
) -> list[dict[str, Any]]:
    """Rows as OData JSON objects; binary (rowversion) columns become base64 text."""
    if select is None:
        names: tuple[str, ...] = schema.names
        indexes = tuple(range(len(names)))
    else:
        names = tuple(n for n in schema.names if n in select)
        indexes = tuple(schema.index[n] for n in names)
    binary = [names.index(c.name) for c in schema.columns if c.kind == "binary" and c.name in names]
    getter: Callable[[Row], Any] = (lambda row: row) if select is None else operator.itemgetter(*indexes)
    out: list[dict[str, Any]] = []
    append = out.append
    single = len(indexes) == 1
    for row in rows:
        values = getter(row)
        item = dict(zip(names, (values,) if single else values, strict=False))
        for i in binary:
            name = names[i]
            item[name] = timestamp_to_base64(item[name])
        append(item)
    return out
