"""The process shell every service runs in: logging, /metrics, /healthz, /readyz, and signals.

A service implements ``Service``: ``start`` connects (Kafka, outside systems), ``run`` works until
the stop event is set, ``close`` releases everything, ``readiness`` says whether it can do its job
right now and why not. ``run_service`` wires that to SIGTERM/SIGINT and returns the exit code:
0 after a clean stop, 1 when the service failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import Generator
from typing import Any, Protocol

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from shared.logging import configure_logging
from shared.metrics import SERVICE_INFO, SERVICE_READY
from shared.settings import DEFAULT_PORTS, ServiceSettings

__all__ = ["Readiness", "Service", "build_http_app", "run_service"]

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class Readiness(Protocol):
    def __call__(self) -> tuple[bool, dict[str, Any]]: ...


class Service(Protocol):
    name: str

    async def start(self) -> None:
        """Connect to what the service needs. Called once, before ``run``."""

    async def run(self, stop: asyncio.Event) -> None:
        """Do the work until ``stop`` is set, then return."""

    async def close(self) -> None:
        """Release connections; called once after ``run`` returns or fails."""

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, details) for /readyz."""

    def http_app(self) -> Any | None:
        """An optional ASGI app mounted under / beside the probes (the audit API)."""


def build_http_app(service: Service, started_at: float) -> Starlette:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse(
            {"status": "ok", "service": service.name, "uptime_s": round(time.monotonic() - started_at, 1)}
        )

    async def readyz(_: Request) -> JSONResponse:
        ready, details = service.readiness()
        SERVICE_READY.labels(service.name).set(1 if ready else 0)
        return JSONResponse(
            {"ready": ready, "service": service.name, **details}, status_code=200 if ready else 503
        )

    routes: list[Any] = [
        Route("/metrics", metrics),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    extra = service.http_app()
    if extra is not None:
        routes.append(Mount("/", app=extra))
    return Starlette(routes=routes)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's own loop: the service, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _main(service: Service, settings: ServiceSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started_at = time.monotonic()
    port = settings.http_port or DEFAULT_PORTS.get(service.name, 9100)
    server = _EmbeddedServer(
        uvicorn.Config(
            build_http_app(service, started_at),
            host=settings.http_host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    http = asyncio.create_task(server.serve(), name="http")
    SERVICE_INFO.labels(service.name, settings.instance_id, VERSION).set(1)
    log.info("starting", extra={"http_port": port, "instance": settings.instance_id})
    code = 0
    try:
        start = asyncio.create_task(service.start())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if start in done:
            start.result()
            threshold = settings.gc_young_threshold
            if threshold is None:
                threshold = GC_YOUNG_THRESHOLDS.get(service.name, GC_YOUNG_THRESHOLD)
            tune_gc(threshold)
            log.info("started")
            await service.run(stop)
        else:
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await start
        stopper.cancel()
        log.info("stopping on request")
    except Exception:
        log.exception("service failed")
        code = 1
    finally:
        # Already stopping: a repeated signal (a second Ctrl-C, a supervisor's SIGTERM) must not kill
        # the process half-way through closing. Closing is bounded by timeouts; SIGKILL still works.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(service.close(), timeout=30)
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http, timeout=10)
    log.info("stopped", extra={"exit_code": code})
    return code


GC_YOUNG_THRESHOLD = 50_000
"""Allocations between young-generation collections by default (CPython's default is 700)."""

GC_YOUNG_THRESHOLDS = {"poller": 0}
"""Services that keep CPython's collector: in the poller, whose CPU it barely changed, the later
collections let garbage pile up (peak RSS over a 300,000-customer initial load: 158 MB with the
default collector, 275 MB with the tuned one)."""


def tune_gc(young_threshold: int = GC_YOUNG_THRESHOLD) -> None:
    """Stop the cyclic garbage collector from costing a large share of every service's CPU.

    A batch makes tens of thousands of container objects (decoded events, rows, outputs) that live
    until it is committed, then go by reference counting: they hold no cycles. With CPython's defaults
    they are still scanned again and again as they age, together with everything imported at
    start-up, which measured (``python -m bench.audit_micro``) at about a third of the audit's CPU per
    record. So: collect once, freeze what start-up made (never scanned again), and collect the young
    generation every ``young_threshold`` allocations instead of 700. Cycles are still collected, only
    later. ``young_threshold`` 0 leaves the collector alone (``MLC_GC_YOUNG_THRESHOLD=0``).
    """
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, young_threshold), middle, old)


def run_service(service: Service, settings: ServiceSettings) -> int:
    """Run ``service`` until SIGTERM/SIGINT; the return value is the process exit code."""
    configure_logging(service.name, settings.log_level, settings.log_format)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_main(service, settings))
    return uvloop.run(_main(service, settings))
