"""Fixtures of the end-to-end tests: the whole pipeline (``LocalStack``) on the test broker.

Each test gets its own namespace and work directory; the stack is stopped (SIGTERM to every service)
and the namespace's topics dropped afterwards, whatever the test did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shared.settings import KafkaSettings
from simulators.demo_kafka import start_local_stack
from simulators.stack import LocalStack, StackOptions
from tests.conftest import delete_namespace

StartStack = Callable[..., Awaitable[LocalStack]]


@pytest.fixture
async def start_stack(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[StartStack]:
    """``await start_stack(customers=..., **StackOptions fields)``: a running stack, ready to poll.

    Small companies and a one-second poll interval keep each test to seconds of pipeline time.
    """
    stacks: list[LocalStack] = []

    async def start(**options: Any) -> LocalStack:
        merged: dict[str, Any] = {"customers": 300, "poll_interval": 1.0, **options}
        stack = LocalStack(tmp_path / f"stack{len(stacks)}", kafka_settings, StackOptions(**merged))
        stacks.append(stack)
        await start_local_stack(stack)
        return stack

    try:
        yield start
    finally:
        for stack in stacks:
            stack.stop()
        await delete_namespace(kafka_settings)
