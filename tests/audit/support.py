"""A typed front for ``tests.helpers.wait_for`` with async conditions (its signature infers poorly)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from tests.helpers import wait_for

T = TypeVar("T")


async def eventually(condition: Callable[[], Awaitable[T | None]], timeout: float, message: str) -> T:
    """Await ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    waited: Any = wait_for(cast(Any, condition), timeout=timeout, message=message)
    return cast(T, await waited)
