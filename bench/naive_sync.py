"""The naive sync the connector is compared with: what a cron job (or a manual export and import)
amounts to.

Every run reads every customer from SYSPRO OData (Basic auth, ``$top``/``$skip`` pages) and PUTs
every one with an email to Mailchimp (``status_if_new: subscribed``, about ten at a time), keeping no
state between runs. It is deliberately straightforward, not deliberately bad: it pages, it reuses
connections, it stays under the connection limit and it backs off on 429. It does not batch, diff or
remember, which is the point of the comparison.

    NAIVE_ODATA_PASSWORD=... NAIVE_MAILCHIMP_KEY=... python -m bench.naive_sync \\
        --odata-url http://host/SYSPRO8Odata/SYSPROOData/EDU1 --operator MLC \\
        --api-base http://host/us6/3.0 --list-id abc123 [--json]

Secrets come from the environment, never the command line (other users can read argv).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

__all__ = ["NaiveResult", "naive_sync"]

_COLUMNS = "Customer,Name,Contact,Email,Telephone"


@dataclass
class NaiveResult:
    customers_read: int = 0
    odata_requests: int = 0
    puts: int = 0
    mailchimp_requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    retries_429: int = 0
    skipped_no_email: int = 0
    read_seconds: float = 0.0
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["statuses"] = dict(self.statuses)
        return out


def _names(contact: str, fallback: str) -> tuple[str, str]:
    first, _, last = (contact or fallback or "").strip().partition(" ")
    return first, last


async def _read_all(
    client: httpx.AsyncClient, odata_url: str, auth: httpx.BasicAuth, result: NaiveResult, page_size: int
) -> list[dict[str, Any]]:
    # $top/$skip pages until an empty one: $top alone limits the whole result (no nextLink after it),
    # and a server may cap a page below $top.
    rows: list[dict[str, Any]] = []
    base = f"{odata_url}/ArCustomer?$select={_COLUMNS}&$orderby=Customer&$top={page_size}"
    while True:
        response = await client.get(f"{base}&$skip={len(rows)}", auth=auth)
        result.odata_requests += 1
        response.raise_for_status()
        page = response.json().get("value", [])
        if not page:
            return rows
        rows.extend(page)


async def _put(
    client: httpx.AsyncClient, api_base: str, list_id: str, row: dict[str, Any], result: NaiveResult
) -> None:
    email = (row.get("Email") or "").strip()
    first, last = _names(row.get("Contact") or "", row.get("Name") or "")
    subscriber = hashlib.md5(email.lower().encode()).hexdigest()
    body = {
        "email_address": email,
        "status_if_new": "subscribed",
        "merge_fields": {"FNAME": first, "LNAME": last, "PHONE": (row.get("Telephone") or "").strip()},
    }
    for attempt in range(6):
        response = await client.put(f"{api_base}/lists/{list_id}/members/{subscriber}", json=body)
        result.mailchimp_requests += 1
        if response.status_code != 429:
            result.puts += 1
            result.statuses[str(response.status_code)] += 1
            return
        result.retries_429 += 1
        await asyncio.sleep(float(response.headers.get("Retry-After") or 2**attempt * 0.5))
    result.statuses["gave_up_429"] += 1


async def naive_sync(
    odata_url: str,
    operator: str,
    odata_password: str,
    api_base: str,
    api_key: str,
    list_id: str,
    concurrency: int = 10,
    page_size: int = 5000,
) -> NaiveResult:
    """One full run: read everything, PUT everything."""
    result = NaiveResult()
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120.0) as syspro:
        rows = await _read_all(
            syspro, odata_url.rstrip("/"), httpx.BasicAuth(operator, odata_password), result, page_size
        )
    result.customers_read = len(rows)
    result.read_seconds = round(time.monotonic() - started, 3)
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for row in rows:
        if (row.get("Email") or "").strip():
            queue.put_nowait(row)
        else:
            result.skipped_no_email += 1

    async with httpx.AsyncClient(timeout=120.0, limits=limits, auth=httpx.BasicAuth("naive", api_key)) as mc:

        async def worker() -> None:
            while True:
                try:
                    row = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await _put(mc, api_base.rstrip("/"), list_id, row, result)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_seconds = round(time.monotonic() - started, 3)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.naive_sync", description=__doc__.split("\n\n")[0])
    p.add_argument("--odata-url", required=True)
    p.add_argument("--operator", required=True)
    p.add_argument("--api-base", required=True, help="e.g. https://us6.api.mailchimp.com/3.0")
    p.add_argument("--list-id", required=True)
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--page-size", type=int, default=5000)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = p.parse_args(argv)
    password = os.environ.get("NAIVE_ODATA_PASSWORD")
    key = os.environ.get("NAIVE_MAILCHIMP_KEY")
    if not password or not key:
        print("set NAIVE_ODATA_PASSWORD and NAIVE_MAILCHIMP_KEY", file=sys.stderr)
        return 2
    result = asyncio.run(
        naive_sync(
            args.odata_url,
            args.operator,
            password,
            args.api_base,
            key,
            args.list_id,
            args.concurrency,
            args.page_size,
        )
    )
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        for k, v in result.as_dict().items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
