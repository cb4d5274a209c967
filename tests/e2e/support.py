"""Waiting on the pipeline's visible state: the audience, the audit API and the services' counters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx

from simulators.demo_view import parse_metrics
from simulators.expectations import Report, compare
from simulators.stack import REPO, LocalStack
from tests.helpers import wait_for

__all__ = ["audit_get", "cli", "counters", "synced_audience", "timeline"]


async def synced_audience(stack: LocalStack, timeout: float = 60.0, **kwargs: Any) -> Report:
    """Wait until the audience matches SYSPRO under the policy; the matching report."""
    last: list[Report] = []

    def matches() -> Report | None:
        report = compare(stack, **kwargs)
        last[:] = [report]
        return report if report.ok and report.members_compared else None

    try:
        return await wait_for(matches, timeout, 0.5, "the audience to match SYSPRO")
    except AssertionError:
        raise AssertionError(last[0].render(40) if last else "no comparison ran") from None


async def counters(stack: LocalStack, service: str) -> dict[str, float]:
    """A service's samples summed over labels (``_created`` timestamps left out)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"{stack.processes[service].url}/metrics")
    response.raise_for_status()
    return parse_metrics(response.text)


async def audit_get(stack: LocalStack, path: str, **params: Any) -> Any:
    async with stack.audit_client() as client:
        response = await client.get(path, params=params)
    response.raise_for_status()
    return response.json()


async def timeline(stack: LocalStack, customer: str) -> list[dict[str, Any]]:
    doc = await audit_get(stack, f"/customers/{customer}/timeline")
    return list(doc["entries"])


async def cli(stack: LocalStack, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``ml-connector ARGS`` as a real subprocess with the stack's environment."""
    env = {**stack.env, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("MLC_HTTP_PORT", None)
    command = [sys.executable, "-m", "services.cli", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
