"""Fault injection: slow answers, IIS error pages, hung requests, dropped connections, truncated JSON.

The draw for each request is made up front from a seeded generator, so a given seed and request sequence
always misbehave the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from simulators.syspro.config import SysproFaults

__all__ = ["FaultDraw", "FaultInjector", "drop_connection", "iis_error", "truncate_json"]

_IIS_TITLES = {
    500: "500 - Internal server error.",
    502: "502 - Web server received an invalid response while acting as a gateway or proxy server.",
    503: "Service Unavailable",
    504: "504 - Gateway Timeout",
}


@dataclass(frozen=True)
class FaultDraw:
    latency: float
    timeout: bool
    error_status: int | None
    malformed: bool

    @property
    def name(self) -> str | None:
        if self.timeout:
            return "timeout"
        if self.error_status is not None:
            return f"error_{self.error_status}"
        if self.malformed:
            return "malformed"
        return None


_NO_FAULT = FaultDraw(0.0, False, None, False)


class FaultInjector:
    """Holds the current fault settings and draws a fate for each request."""

    def __init__(self, settings: SysproFaults) -> None:
        self._lock = threading.Lock()
        self.settings = settings
        self._rng = random.Random(settings.seed)

    def replace(self, settings: SysproFaults) -> None:
        with self._lock:
            self.settings = settings
            self._rng = random.Random(settings.seed)

    def draw(self, target: str) -> FaultDraw:
        with self._lock:
            s = self.settings
            if s.applies_to not in ("all", target):
                return _NO_FAULT
            rnd = self._rng.random
            timeout = s.timeout_rate > 0 and rnd() < s.timeout_rate
            error = None
            if not timeout and s.error_rate > 0 and rnd() < s.error_rate and s.error_statuses:
                error = s.error_statuses[int(rnd() * len(s.error_statuses))]
            malformed = not timeout and error is None and s.malformed_rate > 0 and rnd() < s.malformed_rate
            return FaultDraw(s.latency_ms / 1000.0, timeout, error, malformed)


def iis_error(status: int) -> Response:
    """An error page as IIS/HTTP.sys write it: HTML, never OData JSON."""
    title = _IIS_TITLES.get(status, f"{status} - Server error")
    if status == 503:
        body = (
            '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
            "<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n"
            '<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
            "<BODY><h2>Service Unavailable</h2>\r\n<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n"
            "</BODY></HTML>\r\n"
        )
        return Response(
            body, status_code=503, media_type="text/html", headers={"Server": "Microsoft-HTTPAPI/2.0"}
        )
    body = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n<html xmlns="http://www.w3.org/1999/xhtml">\r\n'
        f"<head>\r\n<title>{title}</title>\r\n</head>\r\n<body>\r\n"
        f'<div id="header"><h1>Server Error</h1></div>\r\n<div id="content"><h2>{title}</h2>\r\n'
        "<h3>There is a problem with the resource you are looking for, and it cannot be displayed.</h3>"
        "</div>\r\n</body>\r\n</html>\r\n"
    )
    return Response(
        body,
        status_code=status,
        media_type="text/html",
        headers={"Server": "Microsoft-IIS/10.0", "X-Powered-By": "ASP.NET"},
    )


def truncate_json(response: Response) -> Response:
    """The same response with its body cut short, as when a worker dies mid-write behind a proxy."""
    body = bytes(response.body)
    cut = body[: max(1, len(body) // 2)]
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")
    }
    return Response(
        cut,
        status_code=response.status_code,
        media_type=response.media_type or "application/json",
        headers=headers,
    )


async def sleep_unless_disconnected(receive: Any, seconds: float) -> None:
    """Hold the request for ``seconds``, but stop early when the client gives up."""

    async def disconnected() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), seconds)


async def drop_connection(receive: Any) -> bool:
    """Close the TCP connection without an HTTP response. Returns ``False`` if the server offers no way.

    uvicorn's ``receive`` is a bound method of the request cycle, which holds the transport; closing it is
    what a crashed worker or a reset by a middlebox looks like to the client.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        return False
    transport.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_until_disconnect(receive), 5.0)
    return True


async def _until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
