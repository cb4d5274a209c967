"""One connection limit per Mailchimp API key, shared by every loader worker (see ADR 0030).

Mailchimp refuses an API key's 11th simultaneous request. Workers do not talk to each other; each
knows the size N of the loader's consumer group and takes ``floor(max_in_flight / N)`` slots (at
least one) per key: the shares add up to at most ``max_in_flight`` as long as every worker sees the
same N. The group size is read from Kafka on every rebalance, before the new assignment is processed,
so a worker joining makes the others shrink before it starts; :class:`GroupSize` believes a smaller
group only after a grace period, so a group caught mid-rebalance never inflates a share.

On top of the share, each key's limiter is AIMD: a throttle answer (429, bare 403, "Request
Blocked", or a timeout, after which Mailchimp may still count the connection) halves the local
limit at most once per recovery period; each recovery period without a throttle gives one slot back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["AdaptiveLimiter", "GroupSize", "LimiterRegistry", "share"]

Clock = Callable[[], float]


def share(max_in_flight: int, group_size: int) -> int:
    """This worker's slots per key when ``group_size`` workers split ``max_in_flight``."""
    return max(1, max_in_flight // max(1, group_size))


class GroupSize:
    """The consumer group's size as this worker should believe it.

    Growth is believed at once (a new worker must never find the others still at their old share);
    a shrink only once every observation of the last ``grace`` seconds agrees.
    """

    def __init__(self, grace: float, clock: Clock = time.monotonic) -> None:
        self._grace = grace
        self._clock = clock
        self._seen: deque[tuple[float, int]] = deque()

    def observe(self, size: int) -> int:
        now = self._clock()
        self._seen.append((now, max(1, size)))
        # Keep the newest observation older than the window: it still speaks for the window's start.
        while len(self._seen) > 1 and self._seen[1][0] <= now - self._grace:
            self._seen.popleft()
        return self.value

    @property
    def value(self) -> int:
        if not self._seen:
            return 1
        now = self._clock()
        recent = [n for t, n in self._seen if t > now - self._grace]
        return max([*recent, self._seen[-1][1]])


class AdaptiveLimiter:
    """An asyncio semaphore for one API key whose capacity is the worker's share, cut on throttles.

    Waiters are served first come, first served. ``limit`` changes take effect for the next
    acquisitions; requests already in flight are never interrupted.
    """

    def __init__(
        self,
        name: str,
        ceiling: int,
        recovery_seconds: float,
        clock: Clock = time.monotonic,
        on_change: Callable[[AdaptiveLimiter], None] | None = None,
    ) -> None:
        self.name = name
        self._ceiling = max(1, ceiling)
        self._limit = self._ceiling
        self._recovery = recovery_seconds
        self._clock = clock
        self._last_change = clock()
        self._last_cut = float("-inf")
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_change = on_change
        self.throttles = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def spare(self) -> int:
        """Slots neither in use nor promised to a waiter."""
        return max(0, self.limit - self._in_flight - len(self._waiters))

    @property
    def ceiling(self) -> int:
        return self._ceiling

    @property
    def limit(self) -> int:
        """The current limit, after the additive recovery earned since the last change."""
        if self._limit < self._ceiling:
            steps = int((self._clock() - self._last_change) / self._recovery)
            if steps > 0:
                self._limit = min(self._ceiling, self._limit + steps)
                self._last_change += steps * self._recovery
                self._changed()
        return self._limit

    def set_ceiling(self, ceiling: int) -> None:
        """A new share: shrinking applies now, growing too unless a throttle is being recovered from."""
        ceiling = max(1, ceiling)
        if ceiling == self._ceiling:
            return
        recovering = self._limit < self._ceiling
        self._ceiling = ceiling
        if self._limit > ceiling or not recovering:
            self._limit = ceiling
            self._last_change = self._clock()
        self._changed()
        self._wake()

    def throttled(self) -> None:
        """Mailchimp said "too many": halve the limit (once per recovery period)."""
        self.throttles += 1
        now = self._clock()
        if now - self._last_cut < self._recovery:
            return
        self._last_cut = now
        self._limit = max(1, self.limit // 2)
        self._last_change = now
        self._changed()

    async def acquire(self) -> None:
        if not self._waiters and self._in_flight < self.limit:
            self._in_flight += 1
            self._changed()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # The slot was handed over just as we were cancelled: give it back.
                self.release()
            elif future in self._waiters:
                self._waiters.remove(future)
            raise

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()
        self._changed()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.limit:
            future = self._waiters.popleft()
            if future.done():
                continue
            self._in_flight += 1
            future.set_result(None)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)


class LimiterRegistry:
    """The limiter of every API key this worker uses, all sized from one group size."""

    def __init__(
        self,
        max_in_flight: int,
        recovery_seconds: float,
        shrink_grace: float,
        clock: Clock = time.monotonic,
        on_change: Callable[[AdaptiveLimiter], None] | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self._recovery = recovery_seconds
        self._clock = clock
        self._on_change = on_change
        self.group = GroupSize(shrink_grace, clock)
        self._limiters: dict[str, AdaptiveLimiter] = {}

    @property
    def share(self) -> int:
        return share(self.max_in_flight, self.group.value)

    def for_key(self, key_id: str, name: str) -> AdaptiveLimiter:
        """The limiter of the key ``key_id`` (a digest of the secret); ``name`` labels it in metrics."""
        limiter = self._limiters.get(key_id)
        if limiter is None:
            limiter = AdaptiveLimiter(name, self.share, self._recovery, self._clock, self._on_change)
            self._limiters[key_id] = limiter
        return limiter

    def set_group_size(self, size: int) -> int:
        """Record an observed group size; every key's share follows. Returns the believed size."""
        believed = self.group.observe(size)
        for limiter in self._limiters.values():
            limiter.set_ceiling(self.share)
        return believed

    def limiters(self) -> list[AdaptiveLimiter]:
        return list(self._limiters.values())
