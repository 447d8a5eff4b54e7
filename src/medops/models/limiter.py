"""Bounded, self-adjusting concurrency for one endpoint.

At most ``limit`` requests are in flight. A rate-limit answer halves the limit (at most once
per second, so one burst of 429s counts once); every ``limit`` successes add one back, up to
the configured maximum: additive increase, multiplicative decrease.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

from medops.models.base import StopRequested


class AdaptiveLimiter:
    def __init__(self, max_concurrency: int, cooldown_s: float = 1.0):
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self.limit = max_concurrency
        self.in_flight = 0
        self.lowest_limit = max_concurrency
        self._cooldown_s = cooldown_s
        self._last_decrease = -float("inf")
        self._successes = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    def close(self) -> None:
        """Refuse every waiting and future acquirer; holders keep their slots until they exit."""
        self.closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(StopRequested())

    async def __aenter__(self) -> None:
        if self.closed:
            raise StopRequested()
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser hands its slot over: in_flight already counts us
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                await self.__aexit__()  # we were given a slot we will not use
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def on_throttled(self) -> None:
        now = time.monotonic()
        if now - self._last_decrease >= self._cooldown_s and self.limit > 1:
            self.limit = max(1, self.limit // 2)
            self.lowest_limit = min(self.lowest_limit, self.limit)
            self._last_decrease = now
            self._successes = 0

    def on_success(self) -> None:
        if self.limit < self.max_concurrency:
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self.limit += 1
                self._wake()
