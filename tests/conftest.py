"""Fixtures shared by every test: a real Kafka broker, isolated namespaces, and waiting helpers.

The broker is the one ``scripts/kafka/kafka-local.sh`` runs (started here when needed), or the
cluster ``KAFKA_BOOTSTRAP_SERVERS`` names. Each test gets its own topic/group namespace, so tests
never see each other's records.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.kafka import ensure_topics, make_admin
from shared.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of a running broker, starting the project's local one if needed."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        return existing
    script = REPO / "scripts" / "kafka" / "kafka-local.sh"
    result = subprocess.run(["bash", str(script), "start"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"could not start the local Kafka broker:\n{result.stderr[-4000:]}")
    for line in result.stdout.splitlines():
        if line.startswith("KAFKA_BOOTSTRAP_SERVERS="):
            return line.split("=", 1)[1].strip()
    pytest.fail(f"kafka-local.sh printed no bootstrap address:\n{result.stdout}")


@pytest.fixture
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    """Settings for the test broker with a fresh namespace (topics and groups of this test only)."""
    return KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=f"t{uuid.uuid4().hex[:10]}.")


@pytest.fixture
async def kafka(kafka_settings: KafkaSettings) -> AsyncIterator[KafkaSettings]:
    """Like ``kafka_settings``, with every topic of the registry created in the namespace."""
    await ensure_topics(kafka_settings)
    yield kafka_settings
    await delete_namespace(kafka_settings)


async def delete_namespace(settings: KafkaSettings) -> None:
    """Drop a test's topics: thousands of leftover partitions slow the broker down and grow its memory."""
    admin = make_admin(settings)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(settings.namespace)]
        if names:
            with contextlib.suppress(Exception):
                await admin.delete_topics(names, timeout_ms=30_000)
    finally:
        await admin.close()


@pytest.fixture
def service_env(kafka_settings: KafkaSettings, tmp_path: Path) -> dict[str, str]:
    """Environment for a service subprocess pointed at the test broker and namespace."""
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_settings.bootstrap_servers,
        KAFKA_NAMESPACE=kafka_settings.namespace,
        MLC_LOG_FORMAT="json",
    )
    return env
