"""Where a benchmark runs: the Kafka broker, a namespace and workdir per scenario, the machine's facts."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from shared.kafka import make_admin
from shared.settings import KafkaSettings

__all__ = [
    "REPO",
    "RESULTS_DIR",
    "broker_pid",
    "delete_namespace_topics",
    "ensure_kafka",
    "kafka_settings",
    "load_average",
    "machine_info",
    "new_workdir",
]

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
_KAFKA_SCRIPT = REPO / "scripts" / "kafka" / "kafka-local.sh"


def ensure_kafka() -> str:
    """Bootstrap servers: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else the project's local broker (started
    when needed; the script is idempotent and never stops a broker someone else started)."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        return existing
    result = subprocess.run(
        ["bash", str(_KAFKA_SCRIPT), "start"], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not start the local Kafka broker:\n{result.stderr[-3000:]}")
    for line in result.stdout.splitlines():
        if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
            servers = line.split("=", 1)[1].strip()
            os.environ["KAFKA_BOOTSTRAP_SERVERS"] = servers
            return servers
    raise RuntimeError(f"kafka-local.sh printed no bootstrap address:\n{result.stdout[-2000:]}")


def kafka_settings(bootstrap: str, scenario: str) -> KafkaSettings:
    """Settings with a namespace no other run uses, so topics and groups never mix between runs."""
    tag = scenario.replace("_", "")[:12]
    return KafkaSettings(bootstrap_servers=bootstrap, namespace=f"bench-{tag}-{uuid.uuid4().hex[:8]}.")


def new_workdir(scenario: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"mlc-bench-{scenario}-"))


async def delete_namespace_topics(settings: KafkaSettings) -> int:
    """Delete this run's topics: a benchmark leaves hundreds of thousands of records behind otherwise."""
    if not settings.namespace:
        return 0
    admin = make_admin(settings, "mlc-bench-cleanup")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.namespace)]
        if names:
            await admin.delete_topics(names, timeout_ms=30_000)
        return len(names)
    finally:
        await admin.close()


def broker_pid() -> int | None:
    """The local broker's pid when this machine runs it (its CPU and memory are shared with anyone
    else using the broker, so they are context, not the connector's cost)."""
    path = Path(os.environ.get("MLC_KAFKA_DIR", REPO / ".run" / "kafka")) / "broker.pid"
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine_info() -> dict[str, Any]:
    """Facts that explain a figure: cores, memory, CPU model, load, versions, the code measured."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": _cpu_model(),
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cpus": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": load_average(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
