"""scripts/kafka/kafka-local.sh keeps one broker per runtime dir, whatever order CI and developers call it in.

The broker tests run a real broker on free ports in a temporary runtime dir and reuse the jars the script
has already fetched for the repository (skipped when it never ran here, rather than fetching in a test).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "kafka" / "kafka-local.sh"
CACHED_LIBS = Path(os.environ.get("MLC_KAFKA_LIBS", REPO / ".run" / "kafka" / "libs"))
SCRIPT_TIMEOUT_S = 150


@dataclass(frozen=True)
class Broker:
    env: dict[str, str]
    runtime_dir: Path
    bootstrap: str

    @property
    def pid(self) -> int:
        return int((self.runtime_dir / "broker.pid").read_text())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(runtime_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would point the script at another broker."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAFKA_", "MLC_KAFKA_")) or k == "MLC_KAFKA_LIBS"
    }
    env["MLC_KAFKA_DIR"] = str(runtime_dir)
    env.update(extra)
    return env


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if not (CACHED_LIBS / ".fetched").is_file():
        pytest.skip(f"no broker jars in {CACHED_LIBS}: run scripts/kafka/kafka-local.sh start once")
    runtime_dir = tmp_path_factory.mktemp("kafka-runtime")
    port = _free_port()
    env = _env(
        runtime_dir,
        KAFKA_PORT=str(port),
        KAFKA_CONTROLLER_PORT=str(_free_port()),
        MLC_KAFKA_LIBS=str(CACHED_LIBS),
    )
    started = _run("start", env)
    assert started.returncode == 0, started.stderr
    running = Broker(env, runtime_dir, f"127.0.0.1:{port}")
    pid = running.pid
    try:
        yield running
    finally:
        stopped = _run("stop", env)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert stopped.returncode == 0, stopped.stderr
    assert not (runtime_dir / "broker.pid").exists()


def test_start_prints_the_bootstrap_address_of_a_broker_that_answers(broker: Broker) -> None:
    status = _run("status", broker.env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running (pid {broker.pid}) on {broker.bootstrap}" in status.stdout
    assert f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}" in status.stdout


def test_second_start_leaves_the_running_broker_alone(broker: Broker) -> None:
    pid_before = broker.pid
    again = _run("start", broker.env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}\n"
    assert "already running" in again.stderr
    assert broker.pid == pid_before
    assert _alive(pid_before)


def test_start_with_bootstrap_servers_set_uses_that_cluster_and_launches_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    other_dir = tmp_path / "unused-runtime"
    result = _run("start", _env(other_dir, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}\n"
    assert not (other_dir / "broker.pid").exists()
    assert not (other_dir / "data").exists()


def test_pid_file_of_another_process_is_treated_as_stale_and_removed(tmp_path: Path) -> None:
    # The test's own pid is alive but is not a broker: trusting it would make `stop` kill pytest.
    (tmp_path / "broker.pid").write_text(f"{os.getpid()}\n")
    env = _env(tmp_path, KAFKA_PORT=str(_free_port()))
    status = _run("status", env)
    assert status.returncode == 1
    assert "not running" in status.stdout
    stopped = _run("stop", env)
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "broker.pid").exists()
    assert _alive(os.getpid())


def test_stop_without_a_broker_succeeds(tmp_path: Path) -> None:
    stopped = _run("stop", _env(tmp_path))
    assert stopped.returncode == 0, stopped.stderr
    assert "not running" in stopped.stderr
