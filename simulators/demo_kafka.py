"""The Kafka side of the demo and the end-to-end tests: find or start a broker, start a ``LocalStack``
once its topics are visible, and drop a run's topics afterwards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from rich.console import Console

from shared.kafka import make_admin
from shared.settings import KafkaSettings
from shared.topics import ALL_TOPICS
from simulators.stack import REPO, SERVICES, LocalStack, ServiceProcess

__all__ = ["OwnSessionProcess", "delete_namespace", "kafka_bootstrap", "start_local_stack", "wait_for_topics"]


def kafka_bootstrap(console: Console | None = None) -> str:
    """``KAFKA_BOOTSTRAP_SERVERS``, or the project's local broker (started when it is not running)."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        return existing
    script = REPO / "scripts" / "kafka" / "kafka-local.sh"
    console = console or Console(stderr=True)
    with console.status("starting the local Kafka broker (scripts/kafka/kafka-local.sh start)"):
        result = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"could not start the local Kafka broker:\n{result.stderr[-3000:]}")
    for line in result.stdout.splitlines():
        if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"kafka-local.sh printed no KAFKA_BOOTSTRAP_SERVERS= line:\n{result.stdout[-2000:]}")


async def wait_for_topics(kafka: KafkaSettings, timeout: float = 60.0) -> None:
    """Wait until the broker's metadata lists every topic of the registry in ``kafka``'s namespace.

    A service looks its topics up when it starts; on a busy broker a topic created a moment ago can be
    missing from that first answer.
    """
    wanted = {kafka.topic(spec.name) for spec in ALL_TOPICS}
    admin = make_admin(kafka)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while missing := wanted - set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics not visible after {timeout:.0f} s: {sorted(missing)}")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


class OwnSessionProcess(ServiceProcess):
    """A service in a session of its own: a Ctrl-C in the terminal reaches only the demo, which then
    stops each service once with SIGTERM (a second signal during a service's shutdown would kill it)."""

    def start(self) -> ServiceProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", self.service],
            env=self.env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self


async def start_local_stack(
    stack: LocalStack, services: tuple[str, ...] = SERVICES, own_session: bool = False
) -> None:
    """``LocalStack.start``, with the services started only once their topics are visible.

    ``own_session`` puts each service in a session of its own (the interactive demo).
    """
    stack.start_simulators()
    stack.write_config()
    await stack.create_topics()
    await wait_for_topics(stack.kafka)
    for service in services:
        if own_session:
            instance = f"{stack.kafka.namespace.strip('.') or 'local'}-{service}"
            log = stack.workdir / f"{service}.log"
            process = OwnSessionProcess(service, stack.env, stack.port(service), log, instance)
            stack.processes[service] = process.start()
        else:
            stack.start_service(service)
    await asyncio.gather(*(stack.processes[s].wait_ready() for s in services))


async def delete_namespace(kafka: KafkaSettings) -> None:
    """Drop a run's topics: each demo run has its own namespace, and leftover partitions weigh on Kafka."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(kafka.namespace)]
        if names:
            await admin.delete_topics(names, timeout_ms=30_000)
    finally:
        await admin.close()
