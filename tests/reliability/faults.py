"""Fault phases against a running pipeline: inject, change SYSPRO, hold, clear, wait for convergence.

A phase changes the phone of a few customers while a fault is on, and converges when every one of
those members carries its new phone in Mailchimp. It counts the faults the simulators actually served
(so a test can tell a fault that never hit from one that was survived) and the metric deltas the
services exposed meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.mapper.email_identity import EmailIdentity, read_email
from simulators.expectations import stack_audience
from simulators.stack import StackOptions
from tests.reliability.observe import Metrics
from tests.reliability.pipeline import Pipeline, eventually
from tests.reliability.scale import Scale

__all__ = [
    "FAULT_ENV",
    "FAULT_STATUSES",
    "MAX_ATTEMPTS",
    "PhaseResult",
    "Targets",
    "fault_options",
    "mailchimp_faults",
    "run_phase",
    "slow_answers",
    "syspro_faults",
]

MAX_ATTEMPTS = 8
#: Loader retries capped at 2 s apart: 8 attempts then span ~6-12 s, the retry bound of the fault
#: tests; SYSPRO requests time out after 3 s and are tried 4 times.
FAULT_ENV = {
    "MLC_LOADER_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "MLC_LOADER_BACKOFF_INITIAL_SECONDS": "0.25",
    "MLC_LOADER_BACKOFF_MAX_SECONDS": "2",
    "MLC_LOADER_LIMIT_RECOVERY_SECONDS": "0.5",
    "MLC_MAILCHIMP_TIMEOUT_SECONDS": "3",
    "MLC_POLLER_RETRY_INITIAL_SECONDS": "0.2",
    "MLC_POLLER_RETRY_MAX_SECONDS": "1",
}


def fault_options(scale: Scale) -> StackOptions:
    """A small company polled every second, with the short retry settings above."""
    return StackOptions(
        customers=4000 if scale.full else 400,
        seed=3,
        poll_interval=1.0,
        syspro_source={"timeout_seconds": 3, "max_attempts": 4},
        env=FAULT_ENV,
    )


#: Answers of the Mailchimp simulator that are faults (0: the connection dropped mid-answer).
FAULT_STATUSES = ("0", "403", "429", "500", "503", "504")


def mailchimp_faults(pipeline: Pipeline) -> int:
    """Faulty answers the Mailchimp simulator has served so far (throttles included)."""
    stats = pipeline.stack.mailchimp.stats
    return sum(n for by_status in stats.calls.values() for s, n in by_status.items() if s in FAULT_STATUSES)


def slow_answers(pipeline: Pipeline, ms: float = 1000.0) -> int:
    """Mailchimp answers that took at least ``ms`` (from the simulator's request log)."""
    return sum(1 for entry in pipeline.stack.mailchimp.request_log() if entry.get("ms", 0) >= ms)


def syspro_faults(pipeline: Pipeline) -> int:
    """Faults the SYSPRO simulator has served so far (errors, timeouts, malformed pages, 401s)."""
    stats = pipeline.stack.syspro.stats.as_dict(log_entries=0)
    return int(sum(stats["faults"].values()) + stats["auth_failures"])


@dataclass
class Targets:
    """Customers that alone hold a valid address, handed out a few at a time to the phases."""

    pipeline: Pipeline
    customers: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        audience = stack_audience(self.pipeline.stack)
        owners: dict[str, list[tuple[str, str]]] = {}
        for row in self.pipeline.stack.syspro.rows():
            identity = read_email(row, audience.email)
            if isinstance(identity, EmailIdentity):
                owners.setdefault(identity.subscriber_hash, []).append((row["Customer"], identity.address))
        self.customers = [pairs[0] for pairs in owners.values() if len(pairs) == 1]

    def take(self, count: int) -> list[tuple[str, str]]:
        taken, self.customers = self.customers[:count], self.customers[count:]
        assert len(taken) == count, "not enough customers left for another phase"
        return taken


@dataclass
class PhaseResult:
    name: str
    faults_served: int
    converged_seconds: float
    loader: dict[str, float]
    poller: dict[str, float]
    changed: list[str]

    def summary(self) -> dict[str, Any]:
        return {
            "faults_served": self.faults_served,
            "converged_s": round(self.converged_seconds, 1),
            **{f"loader.{k}": v for k, v in self.loader.items() if v},
            **{f"poller.{k}": v for k, v in self.poller.items() if v},
        }


def _loader_view(m: Metrics) -> dict[str, float]:
    view = {f"retries.{cause}": n for cause, n in m.by("mlc_loader_retries_total", "cause").items()}
    view["throttled"] = m.total("mlc_loader_throttled_total")
    view["outage_retries"] = m.total("mlc_loader_outage_retries_total")
    view["failed"] = m.total("mlc_loader_failed_total")
    view["requests"] = m.total("mlc_loader_requests_total")
    return view


def _poller_view(m: Metrics) -> dict[str, float]:
    view = {f"errors.{r}": n for r, n in m.by("mlc_poller_errors_total", "reason").items()}
    view |= {f"odata.{s}": n for s, n in m.by("mlc_poller_odata_requests_total", "status").items()}
    view["auth_refusals"] = m.total("mlc_poller_auth_refusals_total")
    view["runs_failed"] = m.total("mlc_poller_runs_total", outcome="failed")
    view["runs_completed"] = m.total("mlc_poller_runs_total", outcome="completed")
    return view


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


async def run_phase(
    pipeline: Pipeline,
    targets: Targets,
    name: str,
    inject: Callable[[], object],
    clear: Callable[[], object],
    *,
    served: Callable[[Pipeline], int],
    changes: int = 8,
    hold: float = 0.0,
    clear_after_convergence: bool = False,
    timeout: float = 180.0,
) -> PhaseResult:
    """Inject a fault, change ``changes`` phones, keep the fault on ``hold`` seconds after it first hit
    (or until convergence with ``clear_after_convergence``), clear it, and wait for convergence.

    ``served`` counts the faults served so far (``mailchimp_faults``, ``syspro_faults``, ...): the phase
    first waits for it to move, so a fault that never hit cannot pass for one that was survived."""
    counter = served
    loader_before = _loader_view(await pipeline.metrics("loader"))
    poller_before = _poller_view(await pipeline.metrics("poller"))
    served_before = counter(pipeline)
    inject()
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%H%M%S")
    wanted: dict[str, str] = {}
    for n, (code, email) in enumerate(targets.take(changes)):
        phone = f"{name[:6]}-{stamp}-{n}"[:20]
        pipeline.stack.syspro.update(code, Telephone=phone)
        wanted[email] = phone
    sim = pipeline.stack.mailchimp

    def converged() -> bool:
        for email, phone in wanted.items():
            member = sim.member(pipeline.list_id, email)
            if member is None or member["merge_fields"].get("PHONE") != phone:
                return False
        return True

    try:
        await eventually(lambda: counter(pipeline) > served_before, timeout, 0.1, f"{name}: a fault served")
        if clear_after_convergence:
            await eventually(converged, timeout, 0.25, f"{name}: convergence while faulty")
        elif hold:
            # The outage itself: the fault stays on this long after it first hit.
            await asyncio.sleep(hold)
    finally:
        clear()
    await eventually(converged, timeout, 0.25, f"{name}: convergence after the fault cleared")
    converged_seconds = time.monotonic() - started
    pipeline.assert_alive()
    return PhaseResult(
        name,
        counter(pipeline) - served_before,
        converged_seconds,
        _delta(_loader_view(await pipeline.metrics("loader")), loader_before),
        _delta(_poller_view(await pipeline.metrics("poller")), poller_before),
        list(wanted),
    )
