"""Paging logic over an in-memory page source: misbehaving servers end a scan instead of looping."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.poller.errors import BadResponse
from services.poller.paging import scan_by_key
from services.poller.syspro_client import Page


class SkipIgnoringServer:
    """Answers every query with the first page, whatever ``$skip`` says."""

    async def query(self, params: Sequence[tuple[str, str]]) -> Page:
        return Page([{"Customer": f"{n:03d}"} for n in range(3)], None)

    async def follow(self, next_link: str) -> Page:
        raise AssertionError("no links were sent")


class LoopingLinkServer:
    async def query(self, params: Sequence[tuple[str, str]]) -> Page:
        return Page([{"Customer": "001"}], "http://sim/ArCustomer?$skip=1")

    async def follow(self, next_link: str) -> Page:
        return Page([{"Customer": "002"}], "http://sim/ArCustomer?$skip=1")


async def test_a_server_that_ignores_skip_ends_the_scan_with_an_error() -> None:
    with pytest.raises(BadResponse, match="ignores"):
        async for _ in scan_by_key(SkipIgnoringServer(), ["Customer"], 3):
            pass


async def test_a_next_link_that_points_back_to_itself_ends_the_scan_with_an_error() -> None:
    with pytest.raises(BadResponse, match="nextLink twice"):
        async for _ in scan_by_key(LoopingLinkServer(), ["Customer"], 5000):
            pass
