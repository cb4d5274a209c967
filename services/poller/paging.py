"""How the poller walks ``ArCustomer``: the three read patterns, over any ``PageSource``.

- ``scan_by_key``: every row, ``$orderby=Customer``, ``$top`` = page size, continued with
  ``@odata.nextLink`` when the server sends one, else with ``$skip``; it stops on a short page. Used by
  full scans (snapshot diff).
- ``scan_by_cursor``: the rows at or after the cursor, in (cursor, Customer) order, paged by key set
  (see ``watermark``). Used by incremental cursor runs.
- ``fetch_by_keys``: given customers by code, a few per request (``Customer eq '...' or ...``). Used to
  confirm deletions: ``$skip`` paging over a table that changes while it is read can step over a row,
  and a customer that was merely stepped over must not be reported deleted.

Each yields the rows of one response at a time, so the caller commits page by page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from services.poller.errors import BadResponse
from services.poller.odata_query import any_of
from services.poller.syspro_client import Page
from services.poller.watermark import CursorError, CursorValue, CursorWindow

__all__ = ["KEYS_PER_LOOKUP", "PageSource", "fetch_by_keys", "head_value", "scan_by_cursor", "scan_by_key"]

KEYS_PER_LOOKUP = 20
"""Customers per lookup request: keeps the URL well under IIS's default 2048-byte query string limit."""

Row = dict[str, Any]


class PageSource(Protocol):
    async def query(self, params: Sequence[tuple[str, str]]) -> Page: ...

    async def follow(self, next_link: str) -> Page: ...


async def _chain(source: PageSource, params: Sequence[tuple[str, str]]) -> AsyncIterator[list[Row]]:
    """One request and the ``@odata.nextLink`` chain that continues it."""
    page = await source.query(params)
    followed: set[str] = set()
    while True:
        if page.rows:
            yield page.rows
        if page.next_link is None:
            return
        if page.next_link in followed:
            raise BadResponse("the server sent the same @odata.nextLink twice")
        followed.add(page.next_link)
        page = await source.follow(page.next_link)


async def scan_by_key(
    source: PageSource, select: Sequence[str], page_size: int, key: str = "Customer"
) -> AsyncIterator[list[Row]]:
    skip = 0
    previous_first: object = None
    while True:
        params = [
            ("$select", ",".join(select)),
            ("$orderby", key),
            ("$top", str(page_size)),
            ("$skip", str(skip)),
        ]
        got = 0
        async for rows in _chain(source, params):
            if got == 0:
                if skip and rows[0].get(key) == previous_first:
                    raise BadResponse(
                        "the server ignores $skip: a page began with the previous page's first row"
                    )
                previous_first = rows[0].get(key)
            got += len(rows)
            yield rows
        if got < page_size:
            return
        skip += got


async def scan_by_cursor(
    source: PageSource, select: Sequence[str], window: CursorWindow, page_size: int
) -> AsyncIterator[list[Row]]:
    last: tuple[CursorValue, str] | None = None
    while True:
        params = [("$select", ",".join(select))]
        condition = window.filter_after(last)
        if condition is not None:
            params.append(("$filter", condition))
        params += [("$orderby", window.orderby()), ("$top", str(page_size))]
        got = 0
        last_row: Row | None = None
        async for rows in _chain(source, params):
            got += len(rows)
            last_row = rows[-1]
            yield rows
        if got < page_size or last_row is None:
            return
        following = _continuation(window, last_row)
        if following == last:
            raise BadResponse("a key-set page did not move past the previous one")
        last = following


def _continuation(window: CursorWindow, row: Row) -> tuple[CursorValue, str]:
    key = row.get(window.key_column)
    try:
        value = CursorValue.from_odata(window.kind, row.get(window.column))
    except CursorError as exc:
        raise BadResponse(str(exc)) from None
    if value is None or not isinstance(key, str):
        raise BadResponse(f"a page ended on a row without {window.column} or {window.key_column}")
    return value, key


async def fetch_by_keys(
    source: PageSource, select: Sequence[str], codes: Sequence[str], key: str = "Customer"
) -> AsyncIterator[list[Row]]:
    for start in range(0, len(codes), KEYS_PER_LOOKUP):
        batch = codes[start : start + KEYS_PER_LOOKUP]
        params = [("$select", ",".join(select)), ("$filter", any_of(key, batch)), ("$orderby", key)]
        async for rows in _chain(source, params):
            yield rows


async def head_value(source: PageSource, column: str, key: str = "Customer") -> object:
    """The highest value of ``column`` in the table right now (``None`` when empty or all null)."""
    page = await source.query([("$select", f"{key},{column}"), ("$orderby", f"{column} desc"), ("$top", "1")])
    return page.rows[0].get(column) if page.rows else None
