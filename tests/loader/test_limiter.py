"""The per-key connection limiter: shares of the group, AIMD on throttles, FIFO waiting."""

from __future__ import annotations

import asyncio

import pytest

from services.loader.limiter import AdaptiveLimiter, GroupSize, LimiterRegistry, share
from services.loader.membership import active_members, lower_bound


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("workers", "expected"), [(1, 9), (2, 4), (3, 3), (4, 2), (9, 1), (12, 1), (0, 9)])
def test_each_worker_takes_its_share_of_the_key(workers: int, expected: int) -> None:
    assert share(9, workers) == expected


def test_shares_of_a_group_never_add_up_to_more_than_the_limit() -> None:
    for max_in_flight in range(1, 11):
        for workers in range(1, max_in_flight + 1):
            assert share(max_in_flight, workers) * workers <= max_in_flight


async def test_the_limiter_never_lets_more_requests_in_flight_than_its_limit() -> None:
    limiter = AdaptiveLimiter("k", 4, recovery_seconds=10)
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(request() for _ in range(200)))
    assert peak == 4 and limiter.in_flight == 0


async def test_waiters_are_served_in_arrival_order() -> None:
    limiter = AdaptiveLimiter("k", 1, recovery_seconds=10)
    order: list[int] = []
    await limiter.acquire()

    async def waiter(n: int) -> None:
        async with limiter.slot():
            order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await asyncio.sleep(0)
    limiter.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    limiter = AdaptiveLimiter("k", 1, recovery_seconds=10)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    limiter.release()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.in_flight == 0
    await asyncio.wait_for(limiter.acquire(), 1)


def test_a_throttle_halves_the_limit_once_per_period_and_it_recovers_one_slot_per_period() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter("k", 9, recovery_seconds=2, clock=clock)
    limiter.throttled()
    limiter.throttled()  # the same burst: no second cut
    assert limiter.limit == 4
    clock.now += 2.1
    limiter.throttled()
    assert limiter.limit == 2
    clock.now += 1.0
    assert limiter.limit == 2
    clock.now += 1.1
    assert limiter.limit == 3
    clock.now += 100
    assert limiter.limit == 9


def test_the_limit_never_drops_below_one() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter("k", 1, recovery_seconds=1, clock=clock)
    limiter.throttled()
    assert limiter.limit == 1


def test_a_smaller_share_applies_at_once_and_a_larger_one_waits_for_recovery() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter("k", 9, recovery_seconds=2, clock=clock)
    limiter.set_ceiling(4)
    assert (limiter.ceiling, limiter.limit) == (4, 4)
    limiter.set_ceiling(9)
    assert limiter.limit == 9
    limiter.throttled()
    limiter.set_ceiling(8)
    assert limiter.limit == 4
    clock.now += 4.1
    assert limiter.limit == 6


def test_group_growth_is_believed_at_once_and_a_shrink_only_after_the_grace_period() -> None:
    clock = Clock()
    group = GroupSize(grace=15, clock=clock)
    assert group.value == 1
    assert group.observe(1) == 1
    assert group.observe(2) == 2
    clock.now += 5
    assert group.observe(1) == 2
    clock.now += 5
    assert group.observe(1) == 2
    clock.now += 6
    assert group.observe(1) == 1
    assert group.observe(3) == 3


def test_every_key_follows_the_group_size() -> None:
    clock = Clock()
    registry = LimiterRegistry(9, recovery_seconds=2, shrink_grace=0, clock=clock)
    first, second = registry.for_key("a", "one"), registry.for_key("b", "two")
    assert registry.for_key("a", "other name") is first
    registry.set_group_size(2)
    assert (first.limit, second.limit) == (4, 4)
    registry.set_group_size(3)
    assert (first.limit, second.limit, registry.for_key("c", "three").limit) == (3, 3, 3)


def test_only_members_owning_partitions_count_once_the_group_is_stable() -> None:
    owning = b"\x00\x00\x00\x00\x00\x01\x00\x01t\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"
    idle = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    members = [("m1", "c", "h", b"", owning), ("m2", "c", "h", b"", idle), ("m3", "c", "h", b"", owning)]
    assert active_members("Stable", members) == 2
    assert active_members("CompletingRebalance", members) == 3
    assert active_members("Stable", [("m1", "c", "h", b"", b"")]) == 0


def test_a_worker_owning_part_of_the_topic_knows_the_group_is_at_least_that_split() -> None:
    assert lower_bound(6, 3) == 2
    assert lower_bound(6, 6) == 1
    assert lower_bound(6, 0) == 1
