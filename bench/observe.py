"""What a benchmark reads while the services run: their /metrics (with labels) and their processes
(RSS and CPU time via psutil)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "FOREIGN_CORES",
    "ForeignLoad",
    "Metrics",
    "ProcessSampler",
    "ProcessStats",
    "scrape",
    "wait_until",
]


@dataclass(frozen=True)
class Metrics:
    """One scrape of a service's /metrics: every sample with its labels."""

    samples: tuple[tuple[str, Mapping[str, str], float], ...]

    def total(self, name: str, **labels: str) -> float:
        """Sum of ``name`` over the samples whose labels include ``labels``."""
        return sum(
            value
            for sample, sample_labels, value in self.samples
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def by_label(self, name: str, label: str, **labels: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for sample, sample_labels, value in self.samples:
            if sample == name and all(sample_labels.get(k) == v for k, v in labels.items()):
                key = sample_labels.get(label, "")
                out[key] = out.get(key, 0.0) + value
        return out


EMPTY = Metrics(())


async def scrape(client: httpx.AsyncClient, url: str) -> Metrics:
    """The service's metrics; empty when it cannot answer (starting, stopped, busy past the timeout)."""
    try:
        response = await client.get(f"{url}/metrics")
    except httpx.HTTPError:
        return EMPTY
    if response.status_code != 200:
        return EMPTY
    samples = tuple(
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    )
    return Metrics(samples)


async def wait_until(
    check: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition"
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached after {timeout:.0f}s")
        await asyncio.sleep(interval)


@dataclass
class ProcessStats:
    pid: int
    peak_rss: int = 0
    last_rss: int = 0
    cpu_seconds: float = 0.0
    #: (seconds since the sampler started, RSS bytes)
    series: list[tuple[float, int]] = field(default_factory=list)


class ProcessSampler:
    """Samples RSS and CPU time of named processes in the background.

    The benchmark's own process is sampled as ``harness``: it hosts both simulators, so its CPU time is
    what the simulated SYSPRO and Mailchimp (and the measuring) cost on the same two cores.
    """

    def __init__(self, pids: Mapping[str, int], interval: float = 0.25, keep_series: bool = False) -> None:
        self.interval = interval
        self.keep_series = keep_series
        self._procs = {name: psutil.Process(pid) for name, pid in {**pids, "harness": os.getpid()}.items()}
        self.stats = {name: ProcessStats(proc.pid) for name, proc in self._procs.items()}
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()

    def add(self, name: str, pid: int) -> None:
        self._procs[name] = psutil.Process(pid)
        self.stats[name] = ProcessStats(pid)

    def sample(self) -> None:
        now = time.monotonic() - self._started
        for name, proc in self._procs.items():
            stats = self.stats[name]
            with contextlib.suppress(psutil.Error):
                with proc.oneshot():
                    rss = proc.memory_info().rss
                    times = proc.cpu_times()
                stats.last_rss = rss
                stats.peak_rss = max(stats.peak_rss, rss)
                stats.cpu_seconds = times.user + times.system
                if self.keep_series:
                    stats.series.append((round(now, 2), rss))

    def cpu(self) -> dict[str, float]:
        self.sample()
        return {name: s.cpu_seconds for name, s in self.stats.items()}

    def reset_peaks(self) -> None:
        self.sample()
        for stats in self.stats.values():
            stats.peak_rss = stats.last_rss

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def __enter__(self) -> ProcessSampler:
        self._started = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()

    def peaks_mb(self) -> dict[str, float]:
        return {name: round(s.peak_rss / 2**20, 1) for name, s in self.stats.items()}


#: A result is labelled "measured under load" when other work took more than this many cores on
#: average while it ran.
FOREIGN_CORES = 0.25


def _busy_seconds() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


class ForeignLoad:
    """How much CPU other work on the machine took while a scenario ran.

    Every second: the machine's busy CPU time minus the CPU time of this process, its children (the
    services, the naive sync) and ``extra`` pids (the broker). The load average cannot tell the
    benchmark's own load from someone else's; this can.
    """

    def __init__(self, extra: list[int] | None = None, interval: float = 1.0) -> None:
        self.extra = extra or []
        self.interval = interval
        self.foreign = 0.0
        self.own = 0.0
        self.elapsed = 0.0
        self._task: asyncio.Task[None] | None = None

    def _ours(self) -> dict[int, float]:
        me = psutil.Process()
        procs = [me, *me.children(recursive=True)]
        procs += [psutil.Process(pid) for pid in self.extra if psutil.pid_exists(pid)]
        out: dict[int, float] = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
        return out

    async def _run(self) -> None:
        last_busy, last_ours, last_t = _busy_seconds(), self._ours(), time.monotonic()
        while True:
            await asyncio.sleep(self.interval)
            busy, ours, now = _busy_seconds(), self._ours(), time.monotonic()
            own = sum(v - last_ours.get(pid, v) for pid, v in ours.items())
            self.own += own
            self.foreign += max(0.0, busy - last_busy - own)
            self.elapsed += now - last_t
            last_busy, last_ours, last_t = busy, ours, now

    def __enter__(self) -> ForeignLoad:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def figures(self) -> dict[str, float | None]:
        if not self.elapsed:
            return {"foreign_cpu_cores": None, "own_cpu_cores": None}
        return {
            "foreign_cpu_cores": round(self.foreign / self.elapsed, 2),
            "own_cpu_cores": round(self.own / self.elapsed, 2),
        }
