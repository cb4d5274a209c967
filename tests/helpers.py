"""Helpers for tests: wait on conditions with deadlines, produce and read topics, run services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import TopicPartition

from shared.codec import decode, encode
from shared.events import Event
from shared.kafka import make_consumer, make_producer
from shared.settings import KafkaSettings

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]


async def wait_for(
    condition: Callable[[], Awaitable[T | None] | T | None],
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
            result = await result
        last = result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")
        await asyncio.sleep(interval)


async def produce(settings: KafkaSettings, topic: str, events: Iterable[Event]) -> None:
    producer = make_producer(settings, "test-producer")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(settings.topic(topic), encode(event), key=event.key())
    finally:
        await producer.stop()


async def produce_raw(
    settings: KafkaSettings,
    topic: str,
    value: bytes | None,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = make_producer(settings, "test-producer")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(topic), value, key=key, headers=headers)
    finally:
        await producer.stop()


async def read_all(settings: KafkaSettings, topic: str, timeout: float = 5.0) -> list[Any]:
    """Every committed record currently on ``topic`` (namespaced), from the beginning."""
    consumer = make_consumer(settings, "test-reader", None)
    await consumer.start()
    try:
        full = settings.topic(topic)
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(full) or set()
        tps = [TopicPartition(full, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                out.extend(records)
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
        return out
    finally:
        await consumer.stop()


async def read_events(settings: KafkaSettings, topic: str, timeout: float = 5.0) -> list[Event]:
    return [decode(r.value) for r in await read_all(settings, topic, timeout) if r.value is not None]


class ServiceProcess:
    """``ml-connector run <service>`` as a real subprocess (for SIGTERM/SIGKILL tests)."""

    def __init__(self, service: str, env: dict[str, str], port: int, log_path: Path) -> None:
        self.service = service
        self.env = {**env, "MLC_HTTP_PORT": str(port), "MLC_HTTP_HOST": "127.0.0.1"}
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", self.service],
            env=self.env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def ready() -> dict[str, Any] | None:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.service} exited with {self.proc.returncode}:\n{self.logs()[-3000:]}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.url}/readyz")
                    if response.status_code == 200:
                        return dict(response.json())
                return None

            return await wait_for(ready, timeout, 0.2, f"{self.service} /readyz")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        assert self.proc is not None
        self.proc.kill()
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()


@contextlib.asynccontextmanager
async def running(service: Any) -> AsyncIterator[Any]:
    """Run a ``shared.runtime.Service`` in this event loop for the duration of the block."""
    stop = asyncio.Event()
    await service.start()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await service.close()
        if task.done() and not task.cancelled() and task.exception():
            raise task.exception()  # type: ignore[misc]


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}
