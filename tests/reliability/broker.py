"""A Kafka broker of the test's own, which it may stop, kill and restart.

The shared broker on 9092 serves everyone's tests and must never be stopped, so a broker-restart test
starts another one with ``scripts/kafka/kafka-local.sh`` on free ports, in its own runtime dir, keeping
its data across restarts (``MLC_KAFKA_KEEP_DATA=1``) and reusing the jars already fetched for the
shared broker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from simulators._server import free_port

__all__ = ["PrivateBroker"]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kafka" / "kafka-local.sh"
SHARED_LIBS = REPO / ".run" / "kafka" / "libs"


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class PrivateBroker:
    """One single-node KRaft broker on loopback, controlled through ``kafka-local.sh``."""

    def __init__(self, runtime_dir: Path) -> None:
        self.dir = runtime_dir
        self.port = free_port()
        self.controller_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MLC_KAFKA_"))}
        env.update(
            MLC_KAFKA_DIR=str(runtime_dir),
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            MLC_KAFKA_KEEP_DATA="1",
            MLC_KAFKA_FORCE_LOCAL="1",
        )
        if SHARED_LIBS.is_dir():
            env["MLC_KAFKA_LIBS"] = str(SHARED_LIBS)
        self.env = env
        self.stops = 0
        self.kills = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _script(self, command: str, timeout: float = 300) -> str:
        result = subprocess.run(
            ["bash", str(SCRIPT), command], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka-local.sh {command} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> str:
        """Start (or restart, keeping the data) and wait until a client round-trip works."""
        self._script("start")
        return self.bootstrap

    def stop(self) -> None:
        """A controlled shutdown (SIGTERM, as ``kafka-local.sh stop`` does)."""
        self._script("stop")
        self.stops += 1

    def kill(self) -> None:
        """SIGKILL this broker's JVM (its own pid file): no controlled shutdown, unflushed logs."""
        pid = int((self.dir / "broker.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.kills += 1

    def close(self) -> None:
        try:
            self._script("stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
