"""A ``LocalStack`` for one benchmark run: own namespace and workdir, torn down whatever happens.

Teardown stops the service subprocesses and the simulator threads, deletes the run's topics and
removes the workdir, on success, on failure and on Ctrl-C/SIGTERM (the cancellation reaches the
``finally`` here). An ``atexit`` hook kills any service still alive if the interpreter exits another way.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.env import delete_namespace_topics, kafka_settings, new_workdir
from bench.observe import EMPTY, Metrics, scrape
from simulators.stack import SERVICES, LocalStack, ServiceProcess, StackOptions

__all__ = ["BenchStack", "Interrupted", "install_signal_handlers", "running_stack"]

log = logging.getLogger("bench")

_LIVE: set[ServiceProcess] = set()
_STOPPING = False


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: raised from the waiting loops so teardown runs even if a library swallowed
    the task cancellation that came with the signal."""


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(Exception):
            proc.kill()


def install_signal_handlers(task: asyncio.Task[object]) -> None:
    """First SIGINT/SIGTERM: stop waiting and tear down (cancel ``task``, and make every waiting loop
    raise ``Interrupted``). A second one kills the services and exits at once."""

    def on_signal(signum: int) -> None:
        global _STOPPING
        if _STOPPING:
            _kill_leftovers()
            os._exit(128 + signum)
        _STOPPING = True
        log.warning("interrupted: stopping services and deleting this run's topics (again to force)")
        task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)


def stopping() -> bool:
    return _STOPPING


class BenchStack:
    """A started ``LocalStack`` plus what every scenario needs from it."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=3600.0))

    @property
    def namespace(self) -> str:
        return self.stack.kafka.namespace

    def pids(self) -> dict[str, int]:
        return {name: p.proc.pid for name, p in self.stack.processes.items() if p.proc is not None}

    def start_service(self, service: str) -> ServiceProcess:
        proc = self.stack.start_service(service)
        _LIVE.add(proc)
        return proc

    async def start_services(self, services: tuple[str, ...]) -> None:
        procs = [self.start_service(s) for s in services]
        await asyncio.gather(*(p.wait_ready(timeout=180.0) for p in procs))

    async def metrics(self, service: str) -> Metrics:
        proc = self.stack.processes.get(service)
        if proc is None or not proc.alive:
            return EMPTY
        return await scrape(self.http, proc.url)

    async def all_metrics(self) -> dict[str, Metrics]:
        names = list(self.stack.processes)
        scraped = await asyncio.gather(*(self.metrics(n) for n in names))
        return dict(zip(names, scraped, strict=True))

    async def poll_now(self) -> dict[str, Any]:
        """Run one poll of the benchmark's connection now; returns the poller's run report."""
        poller = self.stack.processes["poller"]
        response = await self.http.post(f"{poller.url}/poll/{self.stack.options.connection_id}")
        report: dict[str, Any] = response.json()
        if response.status_code != 200:
            raise RuntimeError(f"poll run failed: {report}")
        return report

    def check_alive(self) -> None:
        """Raise when a service died (a benchmark waiting on a dead service would only time out) or
        the run was interrupted."""
        if _STOPPING:
            raise Interrupted
        for name, proc in self.stack.processes.items():
            if not proc.alive:
                code = proc.proc.returncode if proc.proc is not None else None
                raise RuntimeError(f"{name} exited with {code}:\n{proc.logs()[-3000:]}")

    def logs(self, service: str, tail: int = 3000) -> str:
        return self.stack.processes[service].logs()[-tail:]

    async def aclose(self) -> None:
        await self.http.aclose()


def _stop(stack: LocalStack) -> None:
    for proc in stack.processes.values():
        with contextlib.suppress(Exception):
            proc.terminate(timeout=20.0)
        _LIVE.discard(proc)
    for server in (stack.syspro_server, stack.mailchimp_server):
        # A server thread that never started cannot be joined.
        if server.server.started:
            with contextlib.suppress(Exception):
                server.stop()


@contextlib.asynccontextmanager
async def running_stack(
    bootstrap: str,
    scenario: str,
    options: StackOptions,
    services: tuple[str, ...] = SERVICES,
    keep: bool = False,
) -> AsyncIterator[BenchStack]:
    """Simulators started, config written, topics created, ``services`` running and ready."""
    settings = kafka_settings(bootstrap, scenario)
    workdir: Path = new_workdir(scenario)
    stack = LocalStack(workdir, settings, options)
    bench = BenchStack(stack)
    started = time.monotonic()
    failed = False
    try:
        stack.start_simulators()
        stack.write_config()
        await stack.create_topics()
        if services:
            await bench.start_services(services)
        log.info("stack %s ready in %.1fs", settings.namespace, time.monotonic() - started)
        yield bench
    except Exception:
        failed = True
        raise
    finally:
        _stop(stack)
        await bench.aclose()
        if not keep:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(delete_namespace_topics(settings), 60)
        if keep or failed:
            # The services' logs are what explains a failed run.
            log.warning("kept %s (service logs, config) of namespace %s", workdir, settings.namespace)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
