"""The mapper service shell: a skeleton that connects to Kafka and says plainly that it does no work yet."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shared.kafka import make_admin
from shared.settings import KafkaSettings, ServiceSettings, load

log = logging.getLogger(__name__)


class SkeletonService:
    name = "mapper"

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.connected = False

    async def start(self) -> None:
        admin = make_admin(self.kafka, f"mlc-{self.name}")
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()
        self.connected = True
        log.warning("skeleton: connected to Kafka but no processing is implemented yet")

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()

    async def close(self) -> None:
        self.connected = False

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self.connected, {"doing": "skeleton: no processing implemented yet", "kafka": self.connected}

    def http_app(self) -> Any | None:
        return None


def create_service(settings: ServiceSettings) -> SkeletonService:
    return SkeletonService(load(KafkaSettings))
