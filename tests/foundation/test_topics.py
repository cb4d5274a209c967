"""`ml-connector topics create` against the real broker: creates, verifies, and is idempotent."""

from __future__ import annotations

import json
import subprocess
import sys

from aiokafka.admin import NewTopic

from shared.kafka import ensure_topics, make_admin
from shared.settings import KafkaSettings
from shared.topics import ALL_TOPICS, CUSTOMER_CHANGED
from tests.helpers import REPO


def _cli(kafka_settings: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "KAFKA_NAMESPACE": kafka_settings.namespace,
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_topics_create_twice_creates_then_verifies(kafka_settings: KafkaSettings) -> None:
    first = _cli(kafka_settings, "topics", "create", "--json")
    assert first.returncode == 0, first.stderr
    assert {r["status"] for r in json.loads(first.stdout)} == {"created"}
    second = _cli(kafka_settings, "topics", "create", "--json")
    assert second.returncode == 0, second.stderr
    reports = json.loads(second.stdout)
    assert {r["status"] for r in reports} == {"ok"}
    assert {r["name"] for r in reports} == {kafka_settings.topic(s.name) for s in ALL_TOPICS}


async def test_a_topic_that_disagrees_with_the_registry_is_reported_not_changed(
    kafka_settings: KafkaSettings,
) -> None:
    admin = make_admin(kafka_settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(kafka_settings.topic(CUSTOMER_CHANGED.name), 2, 1)])
    finally:
        await admin.close()
    reports = {r.name: r for r in await ensure_topics(kafka_settings)}
    bad = reports[kafka_settings.topic(CUSTOMER_CHANGED.name)]
    assert bad.status == "mismatch"
    assert "partitions 2 (registry: 6)" in bad.detail
    result = _cli(kafka_settings, "topics", "create", "--json")
    assert result.returncode == 1
